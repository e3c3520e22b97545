package setup

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Element is a generic XML element: enough of a DOM to edit a CIB without
// losing what storhaug does not know about.
type Element struct {
	Name     string
	Attrs    []xml.Attr // in document order
	Children []*Element
	Text     string // character data (other than indentation)
	Comment  bool   // a comment node: Text is its content
}

// E makes an element with attributes given as name, value pairs.
func E(name string, attrs ...string) *Element {
	e := &Element{Name: name}
	for i := 0; i+1 < len(attrs); i += 2 {
		e.Set(attrs[i], attrs[i+1])
	}
	return e
}

// Add appends children and returns e.
func (e *Element) Add(children ...*Element) *Element {
	e.Children = append(e.Children, children...)
	return e
}

// Get returns the value of attribute name, or "".
func (e *Element) Get(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// Has reports whether the attribute is present.
func (e *Element) Has(name string) bool {
	for _, a := range e.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			return true
		}
	}
	return false
}

// Set sets attribute name, keeping its position if it exists.
func (e *Element) Set(name, value string) {
	for i, a := range e.Attrs {
		if a.Name.Local == name && a.Name.Space == "" {
			e.Attrs[i].Value = value
			return
		}
	}
	e.Attrs = append(e.Attrs, xml.Attr{Name: xml.Name{Local: name}, Value: value})
}

// Child returns the first child element called name, or nil.
func (e *Element) Child(name string) *Element {
	for _, c := range e.Children {
		if !c.Comment && c.Name == name {
			return c
		}
	}
	return nil
}

// Find follows a path of child names.
func (e *Element) Find(path ...string) *Element {
	cur := e
	for _, p := range path {
		if cur == nil {
			return nil
		}
		cur = cur.Child(p)
	}
	return cur
}

// Walk calls fn for e and every element below it, depth first; fn returning
// false skips the element's children.
func (e *Element) Walk(fn func(*Element) bool) {
	if e.Comment || !fn(e) {
		return
	}
	for _, c := range e.Children {
		c.Walk(fn)
	}
}

// Clone returns a deep copy.
func (e *Element) Clone() *Element {
	c := *e
	c.Attrs = append([]xml.Attr(nil), e.Attrs...)
	c.Children = make([]*Element, len(e.Children))
	for i, ch := range e.Children {
		c.Children[i] = ch.Clone()
	}
	return &c
}

// ParseXML reads one XML document.
func ParseXML(data []byte) (*Element, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var stack []*Element
	var root *Element
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			e := &Element{Name: t.Name.Local}
			for _, a := range t.Attr {
				e.Attrs = append(e.Attrs, xml.Attr{Name: xml.Name{Space: a.Name.Space, Local: a.Name.Local}, Value: a.Value})
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, e)
			} else if root == nil {
				root = e
			} else {
				return nil, fmt.Errorf("parse XML: more than one root element")
			}
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				if s := strings.TrimSpace(string(t)); s != "" {
					stack[len(stack)-1].Text += string(t)
				}
			}
		case xml.Comment:
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, &Element{Comment: true, Text: string(t)})
			}
		}
	}
	if root == nil {
		return nil, fmt.Errorf("parse XML: no element")
	}
	return root, nil
}

// XML renders e indented by two spaces per level, attributes in their
// order.
func (e *Element) XML() []byte {
	var b bytes.Buffer
	e.write(&b, 0, false)
	return b.Bytes()
}

// Canonical renders e with sorted attributes and no indentation: two
// elements are equal in meaning to Pacemaker when their canonical forms are.
func (e *Element) Canonical() string {
	var b bytes.Buffer
	e.write(&b, -1, true)
	return b.String()
}

func (e *Element) write(b *bytes.Buffer, depth int, sorted bool) {
	indent := func() {
		if depth >= 0 {
			b.WriteString(strings.Repeat("  ", depth))
		}
	}
	nl := func() {
		if depth >= 0 {
			b.WriteByte('\n')
		}
	}
	if e.Comment {
		if sorted {
			return
		}
		indent()
		b.WriteString("<!--" + e.Text + "-->")
		nl()
		return
	}
	indent()
	b.WriteString("<" + e.Name)
	attrs := e.Attrs
	if sorted {
		attrs = append([]xml.Attr(nil), attrs...)
		sort.Slice(attrs, func(i, j int) bool { return attrs[i].Name.Local < attrs[j].Name.Local })
	}
	for _, a := range attrs {
		name := a.Name.Local
		if a.Name.Space != "" {
			name = a.Name.Space + ":" + name
		}
		b.WriteString(" " + name + `="`)
		xml.EscapeText(b, []byte(a.Value))
		b.WriteString(`"`)
	}
	if len(e.Children) == 0 && e.Text == "" {
		b.WriteString("/>")
		nl()
		return
	}
	b.WriteString(">")
	if e.Text != "" {
		xml.EscapeText(b, []byte(e.Text))
	}
	if len(e.Children) > 0 {
		nl()
		next := depth + 1
		if depth < 0 {
			next = -1
		}
		for _, c := range e.Children {
			c.write(b, next, sorted)
		}
		indent()
	}
	b.WriteString("</" + e.Name + ">")
	nl()
}
