// Package callrec holds the domain vocabulary of callrec, a compliance-grade,
// real-time call recorder for Twilio Flex contact centers.
//
// The pipeline (see DESIGN.md in the reference material and README.md):
//
//	Twilio Media Streams ──WebSocket──► mediaadapter ──link protocol──► recorder ──► WAV + bbolt index
//
// This package imports only the standard library. It defines the nouns every
// component shares: the INUM (interaction number), recordings and their
// states, tracks, frames, frame accounting and gaps, errors, and the
// STARTED/STOPPED notifications a recorder emits.
package callrec
