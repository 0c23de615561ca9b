package vip

import (
	"bytes"
	_ "embed"
	"fmt"
	"text/template"
)

//go:embed keepalived.conf.tmpl
var configTemplate string

var tmpl = template.Must(template.New("keepalived.conf").Option("missingkey=error").Parse(configTemplate))

// Render returns the keepalived.conf text of c (text/template: nothing is
// escaped; every value is an interface name, a number or an address that
// the speaker produced).
func Render(c KeepalivedConfig) ([]byte, error) {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, c); err != nil {
		return nil, fmt.Errorf("render keepalived.conf: %w", err)
	}
	return b.Bytes(), nil
}
