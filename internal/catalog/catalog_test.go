package catalog_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/catalog"
)

func TestCheck_AcceptsTheCatalog(t *testing.T) {
	t.Parallel()
	if err := catalog.Check(catalog.All()); err != nil {
		t.Fatalf("Check(All()) = %v, want nil", err)
	}
}

// toolOf returns the catalog's tool of that name, failing the test when
// there is none.
func toolOf(t *testing.T, name string) catalog.Tool {
	t.Helper()
	tool, ok := catalog.Lookup(name)
	if !ok {
		t.Fatalf("Lookup(%q): not in the catalog", name)
	}
	return tool
}

func TestCheck_ReportsEachKindOfMistake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// tools returns the catalog to check, built from the real one.
		tools func(t *testing.T) []catalog.Tool
		// want is a substring the error must contain.
		want string
	}{
		{
			name: "duplicate name",
			tools: func(t *testing.T) []catalog.Tool {
				return append(catalog.All(), toolOf(t, catalog.GetJob))
			},
			want: `tool "get_job": declared twice`,
		},
		{
			name: "camelCase name",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.GetJob)
				tool.Name = "getJob"
				return []catalog.Tool{tool}
			},
			want: `tool "getJob": a name is lower_snake_case`,
		},
		{
			name: "kebab-case name",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.GetJob)
				tool.Name = "get-job"
				return []catalog.Tool{tool}
			},
			want: `tool "get-job": a name is lower_snake_case`,
		},
		{
			name: "empty name",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.GetJob)
				tool.Name = ""
				return []catalog.Tool{tool}
			},
			want: `tool "": a name is lower_snake_case`,
		},
		{
			name: "reserved name unknown",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.GetJob)
				tool.Name = catalog.Unknown
				return []catalog.Tool{tool}
			},
			want: `tool "unknown": the name is reserved`,
		},
		{
			name: "sensitive tool marked read-only",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.TriggerJob)
				tool.ReadOnly = true
				return []catalog.Tool{tool}
			},
			want: `tool "trigger_job": a sensitive tool must not be read-only`,
		},
		{
			name: "read tool not marked read-only",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.GetJob)
				tool.ReadOnly = false
				return []catalog.Tool{tool}
			},
			want: `tool "get_job": a read tool must be read-only`,
		},
		{
			name: "read-only destructive tool",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.GetBuild)
				tool.Destructive = true
				return []catalog.Tool{tool}
			},
			want: `tool "get_build": a read-only tool is not destructive`,
		},
		{
			name: "guest tool with default scopes",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.Health)
				tool.DefaultScopes = []string{"jenkins:read"}
				return []catalog.Tool{tool}
			},
			want: `tool "health": a guest tool needs no scope`,
		},
		{
			name: "non-guest tool with empty non-nil scopes",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.GetJob)
				tool.DefaultScopes = []string{}
				return []catalog.Tool{tool}
			},
			want: `tool "get_job": only guest tools default to no scope`,
		},
		{
			name: "empty scope",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.StopBuild)
				tool.DefaultScopes = []string{""}
				return []catalog.Tool{tool}
			},
			want: `tool "stop_build": empty scope`,
		},
		{
			name: "missing description",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.GetJob)
				tool.Description = ""
				return []catalog.Tool{tool}
			},
			want: `tool "get_job": needs a title and a description`,
		},
		{
			name: "missing title",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.GetJob)
				tool.Title = ""
				return []catalog.Tool{tool}
			},
			want: `tool "get_job": needs a title and a description`,
		},
		{
			name: "unknown class",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.GetJob)
				tool.Class = catalog.ClassSensitive + 1
				return []catalog.Tool{tool}
			},
			want: `tool "get_job": unknown class 4`,
		},
		{
			name: "unknown resource kind",
			tools: func(t *testing.T) []catalog.Tool {
				tool := toolOf(t, catalog.GetJob)
				tool.Resource = -1
				return []catalog.Tool{tool}
			},
			want: `tool "get_job": unknown resource kind -1`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := catalog.Check(tt.tools(t))
			if err == nil {
				t.Fatalf("Check = nil, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestCheck_ReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	a := toolOf(t, catalog.GetJob)
	a.Description = ""
	b := toolOf(t, catalog.TriggerJob)
	b.ReadOnly = true
	err := catalog.Check([]catalog.Tool{a, b})
	if err == nil {
		t.Fatal("Check = nil, want an error")
	}
	for _, want := range []string{`tool "get_job"`, `tool "trigger_job"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %q, want it to mention %s", err, want)
		}
	}
}

func TestAll_ReturnsACopyEachCall(t *testing.T) {
	t.Parallel()
	want := catalog.All()

	got := catalog.All()
	for i := range got {
		got[i].Name = "mutated"
		got[i].Description = ""
		got[i].ReadOnly = !got[i].ReadOnly
		if len(got[i].DefaultScopes) > 0 {
			// Writing through a shared backing array would leak into the
			// next call.
			got[i].DefaultScopes[0] = "evil:scope"
		}
	}
	slices.Reverse(got)

	if diff := cmp.Diff(want, catalog.All()); diff != "" {
		t.Errorf("All() after mutating an earlier result (-want +got):\n%s", diff)
	}
	if err := catalog.Check(catalog.All()); err != nil {
		t.Errorf("Check(All()) after mutating an earlier result = %v", err)
	}
}

func TestNames_FollowsTheOrderOfAll(t *testing.T) {
	t.Parallel()
	var want []string
	for _, tool := range catalog.All() {
		want = append(want, tool.Name)
	}
	if diff := cmp.Diff(want, catalog.Names()); diff != "" {
		t.Errorf("Names() (-All order +got):\n%s", diff)
	}
}

func TestNames_StartsWithHealthAndHasNoDuplicates(t *testing.T) {
	t.Parallel()
	names := catalog.Names()
	if len(names) == 0 || names[0] != catalog.Health {
		t.Errorf("Names()[0] = %v, want %q first", names, catalog.Health)
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(names) {
		t.Errorf("Names() has duplicates: %v", names)
	}
}

func TestLookupKnownLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		wantKnown bool
		wantLabel string
	}{
		{catalog.Health, true, catalog.Health},
		{catalog.TriggerJob, true, catalog.TriggerJob},
		{catalog.GetTestResults, true, catalog.GetTestResults},
		{"", false, catalog.Unknown},
		{catalog.Unknown, false, catalog.Unknown},
		{"no_such_tool", false, catalog.Unknown},
		{"Get_Job", false, catalog.Unknown},     // exact match only
		{" get_job", false, catalog.Unknown},    // no trimming
		{"get_job\x00", false, catalog.Unknown}, // no prefix match
		{strings.Repeat("x", 1<<16), false, catalog.Unknown},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.name[:min(len(tt.name), 20)]), func(t *testing.T) {
			t.Parallel()
			tool, ok := catalog.Lookup(tt.name)
			if ok != tt.wantKnown {
				t.Errorf("Lookup ok = %v, want %v", ok, tt.wantKnown)
			}
			if ok && tool.Name != tt.name {
				t.Errorf("Lookup(%q).Name = %q", tt.name, tool.Name)
			}
			if !ok && !cmp.Equal(tool, catalog.Tool{}) {
				t.Errorf("Lookup of an unknown name = %+v, want the zero Tool", tool)
			}
			if got := catalog.Known(tt.name); got != tt.wantKnown {
				t.Errorf("Known = %v, want %v", got, tt.wantKnown)
			}
			if got := catalog.Label(tt.name); got != tt.wantLabel {
				t.Errorf("Label = %q, want %q", got, tt.wantLabel)
			}
		})
	}
}

func TestLookup_FindsEveryToolOfAll(t *testing.T) {
	t.Parallel()
	for _, want := range catalog.All() {
		got, ok := catalog.Lookup(want.Name)
		if !ok {
			t.Errorf("Lookup(%q): not found", want.Name)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Lookup(%q) (-All +Lookup):\n%s", want.Name, diff)
		}
		if catalog.Label(want.Name) != want.Name {
			t.Errorf("Label(%q) = %q", want.Name, catalog.Label(want.Name))
		}
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	a63 := strings.Repeat("a", 63)
	a64 := strings.Repeat("a", 64)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", `""`},
		{"short name as QuoteToASCII", "get_job", strconv.QuoteToASCII("get_job")},
		{"short non-ASCII as QuoteToASCII", "dép☃", strconv.QuoteToASCII("dép☃")},
		{"exactly 64 bytes kept whole", a64, strconv.QuoteToASCII(a64)},
		{"65 bytes cut to 64", a64 + "b", strconv.QuoteToASCII(a64) + "..."},
		{"rune straddling byte 64 dropped", a63 + "€", strconv.QuoteToASCII(a63) + "..."},
		{"rune ending at byte 64 kept", strings.Repeat("a", 61) + "€", strconv.QuoteToASCII(strings.Repeat("a", 61) + "€")},
		{"newline escaped", "a\nb", `"a\nb"`},
		{"escape escaped", "a\x1b[31mred", `"a\x1b[31mred"`},
		{"NUL escaped", "a\x00b", `"a\x00b"`},
		{"invalid UTF-8 escaped", "a\xffb", `"a\xffb"`},
		{"quote escaped", `a"b`, `"a\"b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := catalog.Quote(tt.in); got != tt.want {
				t.Errorf("Quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestQuote_CutsAtARuneBoundaryAndMarksTheCut(t *testing.T) {
	t.Parallel()
	in := strings.Repeat("a", 63) + "€" + "tail" // € is 3 bytes: bytes 63..65
	got := catalog.Quote(in)
	if !strings.HasSuffix(got, "...") {
		t.Errorf("Quote = %s, want a trailing ...", got)
	}
	unq, err := strconv.Unquote(strings.TrimSuffix(got, "..."))
	if err != nil {
		t.Fatalf("Quote = %s: not a quoted string plus ...: %v", got, err)
	}
	if diff := cmp.Diff(strings.Repeat("a", 63), unq); diff != "" {
		t.Errorf("kept part (-want +got):\n%s", diff)
	}
}

func TestQuote_NeverHoldsRawControlCharacters(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"line1\nline2",
		"\r\n\t\v\f\a\b",
		"\x1b]0;title\x07",
		"\x00\x01\x7f",
		"\u0085\u2028\u2029", // NEL and Unicode line/paragraph separators
		strings.Repeat("\n", 200),
	} {
		got := catalog.Quote(in)
		for i, r := range got {
			if r > unicode.MaxASCII || unicode.IsControl(r) {
				t.Errorf("Quote(%q) = %q: byte %d is %U", in, got, i, r)
			}
		}
	}
}

func TestClass_ActionGroupFollowsSensitivity(t *testing.T) {
	t.Parallel()
	for _, tool := range catalog.All() {
		want := catalog.ActionRead
		if tool.Class == catalog.ClassSensitive {
			want = catalog.ActionWrite
		}
		if got := tool.ActionGroup(); got != want {
			t.Errorf("%s (%s): ActionGroup() = %q, want %q", tool.Name, tool.Class, got, want)
		}
	}
}

func TestSensitiveTools_DefaultToTheBuildScope(t *testing.T) {
	t.Parallel()
	var sensitive []string
	for _, tool := range catalog.All() {
		if tool.Class != catalog.ClassSensitive {
			continue
		}
		sensitive = append(sensitive, tool.Name)
		if diff := cmp.Diff([]string{"jenkins:build"}, tool.DefaultScopes); diff != "" {
			t.Errorf("%s: DefaultScopes (-want +got):\n%s", tool.Name, diff)
		}
		if tool.ActionGroup() != catalog.ActionWrite {
			t.Errorf("%s: ActionGroup() = %q, want write", tool.Name, tool.ActionGroup())
		}
	}
	// Pin which tools change Jenkins, so a new one is a conscious choice.
	want := []string{catalog.TriggerJob, catalog.CancelQueueItem, catalog.StopBuild, catalog.SubmitInput}
	if diff := cmp.Diff(want, sensitive); diff != "" {
		t.Errorf("sensitive tools (-want +got):\n%s", diff)
	}
}

func TestClassAndResource_String(t *testing.T) {
	t.Parallel()
	classes := []struct {
		c    catalog.Class
		want string
	}{
		{catalog.ClassGuest, "guest"},
		{catalog.ClassAuthenticated, "authenticated"},
		{catalog.ClassRead, "read"},
		{catalog.ClassSensitive, "sensitive"},
		{catalog.Class(9), "Class(9)"},
	}
	for _, tt := range classes {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("Class(%d).String() = %q, want %q", int(tt.c), got, tt.want)
		}
	}
	resources := []struct {
		r    catalog.Resource
		want string
	}{
		{catalog.ResourceServer, "server"},
		{catalog.ResourceJob, "job"},
		{catalog.ResourceFolder, "folder"},
		{catalog.ResourceQueueItem, "queue item"},
		{catalog.Resource(-2), "Resource(-2)"},
	}
	for _, tt := range resources {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("Resource(%d).String() = %q, want %q", int(tt.r), got, tt.want)
		}
	}
}

// maxQuote is the bound the fuzz target pins: 64 kept bytes, each of which
// QuoteToASCII may at worst expand (a rune to \UNNNNNNNN), plus the two
// quotes and "...".
const maxQuote = 64*10 + 5

func FuzzQuote(f *testing.F) {
	for _, seed := range []string{
		"",
		"get_job",
		strings.Repeat("a", 63) + "€",
		strings.Repeat("a", 64),
		strings.Repeat("\x01", 100),
		strings.Repeat("\xff", 100),
		strings.Repeat("😀", 30),
		"a\nb\x1b[0m\u2028",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := catalog.Quote(in)
		if !utf8.ValidString(got) {
			t.Errorf("Quote(%q) = %q: not valid UTF-8", in, got)
		}
		for _, r := range got {
			if unicode.IsControl(r) {
				t.Fatalf("Quote(%q) = %q: holds control character %U", in, got, r)
			}
		}
		if len(got) > maxQuote {
			t.Errorf("Quote(%q): %d bytes, want at most %d", in, len(got), maxQuote)
		}
		// The kept part is a prefix of the input, whole runes only.
		kept, err := strconv.Unquote(strings.TrimSuffix(got, "..."))
		if err != nil {
			t.Fatalf("Quote(%q) = %q: does not unquote: %v", in, got, err)
		}
		if !strings.HasPrefix(in, kept) || len(kept) > 64 {
			t.Errorf("Quote(%q) kept %q: not a prefix of at most 64 bytes", in, kept)
		}
		cut, marked := len(kept) < len(in), strings.HasSuffix(got, `"...`)
		if cut != marked {
			t.Errorf("Quote(%q) = %q: cut %v but marked %v; a cut is marked with ... and only a cut", in, got, cut, marked)
		}
	})
}
