// Package audit is callrec's audit trail: an append-only, hash-chained log of
// who did what (logins, searches, views, playbacks, exports, denials, user
// changes), kept in a single bbolt file.
//
// Every entry carries the SHA-256 of its predecessor (Prev) and its own
// SHA-256 (Hash) over its canonical encoding (see Canonical), which includes
// Prev. The first entry's Prev is 64 zeros (Genesis). Changing, deleting,
// reordering or inserting an entry therefore breaks the chain at that point,
// and Verify reports the first broken sequence number. The package offers no
// update or delete operation.
//
// Layout:
//
//	entries  Seq (8-byte big-endian) → JSON of Entry (including Hash)
//	meta     "head" → Seq of the last entry (8-byte big-endian) + its Hash (hex)
//
// The head record lets Verify notice that entries were cut off the end of
// the log, which the chain alone cannot show. A chain only proves that the
// file was not edited by someone who did not also recompute every later hash;
// anchor the LastHash reported by Verify somewhere else (a ticket, a signed
// e-mail, another system) from time to time to make silent rewrites
// detectable.
package audit
