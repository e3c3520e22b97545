package agents

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/storhaug/storhaug/ocf"
)

// The tickle parameters, checked through a small agent of their own.
func TestTickleParams(t *testing.T) {
	a := &ocf.Agent{Name: "T", Version: "1", Params: tickleParams,
		Actions: []ocf.Action{{Name: "validate-all", Handler: tickleValidate}}}
	for _, tc := range []struct {
		env  map[string]string
		code ocf.Code
		want string
	}{
		{map[string]string{}, ocf.Success, ""},
		{map[string]string{"OCF_RESKEY_tickle_dir": "/srv/tickle", "OCF_RESKEY_tickle_ports": "445,2049,20048-20050"}, ocf.Success, ""},
		{map[string]string{"OCF_RESKEY_tickle_dir": "relative"}, ocf.ErrConfigured, "parameter tickle_dir"},
		{map[string]string{"OCF_RESKEY_tickle_ports": "445,x"}, ocf.ErrConfigured, "parameter tickle_ports"},
		{map[string]string{"OCF_RESKEY_tickle_source": "netstat"}, ocf.ErrConfigured, "parameter tickle_source"},
		{map[string]string{"OCF_RESKEY_tickle_rounds": "0"}, ocf.ErrConfigured, "parameter tickle_rounds"},
		{map[string]string{"OCF_RESKEY_tickle_interval": "100"}, ocf.ErrConfigured, "parameter tickle_interval"},
		{map[string]string{"OCF_RESKEY_tickle_refresh": "10"}, ocf.ErrConfigured, "parameter tickle_refresh"},
		{map[string]string{"OCF_RESKEY_tickle": "maybe"}, ocf.ErrConfigured, "parameter tickle"},
	} {
		var out, errb bytes.Buffer
		tc.env["HA_LOGFACILITY"] = "none"
		code := a.Run(context.Background(), []string{"validate-all"}, ocf.MapEnv(tc.env), &out, &errb)
		if code != tc.code || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: %v %q, want %v %q", tc.env, code, errb.String(), tc.code, tc.want)
		}
	}
}

// IPaddr3 advertises the tickle parameters, with defaults that keep a CIB
// written for IPaddr2 working: tickles on, but nothing recorded or sent
// without tickle_dir.
func TestTickleMetaData(t *testing.T) {
	var b bytes.Buffer
	if err := ipaddr3Agent().WriteMetaData(&b, true); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, p := range []string{"tickle", "tickle_dir", "tickle_source", "tickle_ports", "tickle_rounds", "tickle_interval", "tickle_refresh"} {
		if !strings.Contains(md, `<parameter name="`+p+`"`) {
			t.Errorf("meta-data lacks %s", p)
		}
	}
	for name, def := range map[string]string{"tickle": "true", "tickle_dir": "", "tickle_source": "auto", "tickle_rounds": "3", "tickle_interval": "1100"} {
		if p := ipaddr3Agent().Param(name); p == nil || p.Default != def {
			t.Errorf("%s default %v, want %q", name, p, def)
		}
	}
}
