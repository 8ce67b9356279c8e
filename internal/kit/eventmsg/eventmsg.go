package eventmsg

import (
	"fmt"
	"strings"
)

// MaxLen is the longest message the API server stores for an event.
const MaxLen = 1024

// List joins prefix and items ("pruned " + "a, b, c") so that the whole
// message fits in MaxLen, ending in "… and N more" when items are left out.
func List(prefix string, items []string) string {
	msg := prefix + strings.Join(items, ", ")
	if len(msg) <= MaxLen {
		return msg
	}
	var b strings.Builder
	b.WriteString(prefix)
	for i, it := range items {
		rest := len(items) - i
		tail := fmt.Sprintf(" … and %d more", rest)
		sep := ""
		if i > 0 {
			sep = ", "
		}
		// Keep room for the tail of the items after this one.
		after := fmt.Sprintf(" … and %d more", rest-1)
		if b.Len()+len(sep)+len(it)+len(after) > MaxLen {
			b.WriteString(tail)
			return b.String()
		}
		b.WriteString(sep)
		b.WriteString(it)
	}
	return b.String()
}

// Truncate cuts msg to MaxLen, ending in "…" when it was longer.
func Truncate(msg string) string {
	if len(msg) <= MaxLen {
		return msg
	}
	cut := MaxLen - len("…")
	for cut > 0 && !isRuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
