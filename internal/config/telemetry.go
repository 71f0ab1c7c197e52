package config

import (
	"crypto/x509"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/butler-mcp/butler/internal/secret"
)

// Telemetry is what Butler reports to an observability backend besides
// /metrics.
type Telemetry struct {
	// Traces is OpenTelemetry tracing over OTLP.
	Traces Traces `yaml:"traces"`
}

// Traces configures OpenTelemetry tracing (docs/tracing.md).
// It is off while OTLPEndpoint is empty. Butler reads no OTEL_* variable:
// write ${NAME} here for a value from the environment.
type Traces struct {
	// OTLPEndpoint is the collector's URL (http:// or https://); empty
	// turns tracing off. OTLP/HTTP sends to /v1/traces below it unless it
	// has a path of its own.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// Protocol is http (OTLP/HTTP, protobuf) or grpc (OTLP/gRPC).
	Protocol string `yaml:"protocol"`
	// Insecure allows a plain http:// endpoint on a host that is not
	// loopback: spans then cross the network unencrypted, and so do the
	// headers.
	Insecure bool `yaml:"insecure"`
	// CAFile is a PEM bundle of CAs to trust for an https endpoint instead
	// of the system pool.
	CAFile string `yaml:"ca_file"`
	// Headers are sent with every export, e.g. a backend's API key; their
	// values are secrets.
	Headers map[string]secret.String `yaml:"headers"`
	// SampleRatio is the fraction of new traces recorded, from 0 to 1; a
	// call that continues a caller's trace follows the caller's decision.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name of Butler's spans.
	ServiceName string `yaml:"service_name"`
	// JenkinsTraceparent sends a traceparent header with each Jenkins
	// request, so a Jenkins with the OpenTelemetry plugin continues the
	// trace.
	JenkinsTraceparent bool `yaml:"jenkins_traceparent"`
}

// The values of telemetry.traces.protocol.
const (
	TracesProtocolHTTP = "http"
	TracesProtocolGRPC = "grpc"
)

// maxTraceHeaders bounds telemetry.traces.headers.
const maxTraceHeaders = 32

func defaultTelemetry() Telemetry {
	return Telemetry{Traces: Traces{
		Protocol:           TracesProtocolHTTP,
		SampleRatio:        1,
		ServiceName:        "butler",
		JenkinsTraceparent: true,
	}}
}

// Enabled reports whether tracing is on.
func (t Traces) Enabled() bool { return t.OTLPEndpoint != "" }

// HeaderValues returns the export headers with their values revealed, for
// the exporter alone.
func (t Traces) HeaderValues() map[string]string {
	out := make(map[string]string, len(t.Headers))
	for k, v := range t.Headers {
		out[k] = v.Reveal()
	}
	return out
}

// RootCAs returns the pool of ca_file, or nil (the system pool) when it
// is not set.
func (t Traces) RootCAs(readFile func(string) ([]byte, error)) (*x509.CertPool, error) {
	if t.CAFile == "" {
		return nil, nil
	}
	pem, err := readFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("telemetry.traces.ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("telemetry.traces.ca_file %s: no PEM certificate found", t.CAFile)
	}
	return pool, nil
}

func (v *validator) telemetry() {
	const pre = "telemetry.traces."
	t := v.c.Telemetry.Traces
	switch t.Protocol {
	case TracesProtocolHTTP, TracesProtocolGRPC:
	default:
		v.add(pre+"protocol", "%q is not a protocol; want http (OTLP/HTTP, port 4318) or grpc (OTLP/gRPC, port 4317)", t.Protocol)
	}
	if math.IsNaN(t.SampleRatio) || t.SampleRatio < 0 || t.SampleRatio > 1 {
		v.add(pre+"sample_ratio", "%v is out of range; want a fraction from 0 to 1, like 1 (every call) or 0.1", t.SampleRatio)
	}
	switch {
	case t.ServiceName == "":
		v.add(pre+"service_name", "must not be empty; the default is butler")
	case len(t.ServiceName) > 255 || strings.ContainsFunc(t.ServiceName, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		v.add(pre+"service_name", "must be at most 255 bytes without control characters")
	}
	if len(t.Headers) > maxTraceHeaders {
		v.add(pre+"headers", "%d headers; at most %d", len(t.Headers), maxTraceHeaders)
	}
	names := make([]string, 0, len(t.Headers))
	for k := range t.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		field := pre + "headers." + k
		if !isHeaderToken(k) {
			v.add(field, "is not an HTTP header name (letters, digits and !#$%%&'*+-.^_`|~)")
			continue
		}
		val := t.Headers[k].Reveal()
		switch {
		case val == "":
			v.add(field, "must not be empty")
		case strings.ContainsAny(val, "\r\n\x00"):
			v.add(field, "must not contain a line break or NUL (value not shown)")
		}
	}
	if t.OTLPEndpoint == "" {
		if t.CAFile != "" {
			v.add(pre+"ca_file", "is set but otlp_endpoint is not: tracing is off")
		}
		return
	}
	u := v.checkURL(pre+"otlp_endpoint", t.OTLPEndpoint, urlRule{noQuery: true})
	if u == nil {
		return
	}
	plain := u.Scheme == "http"
	if plain && !t.Insecure && !isLoopbackHost(u.Hostname()) {
		v.add(pre+"otlp_endpoint", "%s sends spans and headers unencrypted to a host that is not loopback; use https, or set insecure: true for a collector on a trusted network", showURL(t.OTLPEndpoint))
	}
	if !plain && t.Insecure {
		v.add(pre+"insecure", "applies only to http:// endpoints; %s is https", showURL(t.OTLPEndpoint))
	}
	if t.Protocol == TracesProtocolGRPC && u.Path != "" && u.Path != "/" {
		v.add(pre+"otlp_endpoint", "an OTLP/gRPC endpoint has no path; want e.g. https://collector.example.com:4317")
	}
	if t.CAFile != "" {
		if plain {
			v.add(pre+"ca_file", "applies only to https:// endpoints")
		} else if data, err := v.readFile(t.CAFile); err != nil {
			v.add(pre+"ca_file", "cannot read it: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(data) {
			v.add(pre+"ca_file", "%q holds no PEM certificate (-----BEGIN CERTIFICATE-----)", t.CAFile)
		}
	}
}

// isHeaderToken reports whether s is an RFC 9110 §5.6.2 token.
func isHeaderToken(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
