package schema

import (
	"math"
	"strings"
)

// closest returns the candidate nearest to s by edit distance, if it is near enough to be a
// plausible misspelling: a few edits, and fewer than s has letters ("c" is no misspelling of
// "a").
func closest(s string, candidates []string) (string, bool) {
	best, bestD := "", math.MaxInt
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(2, len(s)/3)
	return best, best != "" && bestD <= limit && bestD < len(s)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt / 2 // not a misspelling of any key; avoid quadratic work on junk
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// unknown is the message for a word (a key, an enum value) not among known.
func unknown(what, word string, known []string) string {
	if len(known) == 0 {
		return "unknown " + what + " " + quote(word) + " (takes none)"
	}
	if s, ok := closest(word, known); ok {
		return "unknown " + what + " " + quote(word) + " (did you mean " + quote(s) + "?)"
	}
	return "unknown " + what + " " + quote(word) + " (want one of: " + strings.Join(known, ", ") + ")"
}
