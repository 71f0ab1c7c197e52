package audit

import "context"

type remoteAddrKey struct{}

// WithRemoteAddr returns ctx carrying the caller's network address, for the
// audit record.
func WithRemoteAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, remoteAddrKey{}, addr)
}

// RemoteAddr returns the caller's address carried by ctx, or "".
func RemoteAddr(ctx context.Context) string {
	s, _ := ctx.Value(remoteAddrKey{}).(string)
	return s
}
