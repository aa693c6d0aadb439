// Package users holds callrec's users, their roles and API tokens, checks
// passwords and tokens, and rate-limits logins.
//
// Roles decide what a user may see: admin and compliance see every call,
// a supervisor only the calls of their own teams, an auditor no calls at all
// but the audit trail (which admin may read too); see User.CanSee,
// User.CanSearch and User.CanAudit.
//
// Passwords are hashed with argon2id (golang.org/x/crypto/argon2) under a
// random 16-byte salt per user and stored as a PHC string,
// "$argon2id$v=19$m=32768,t=2,p=2$<salt>$<hash>", so the parameters can be
// raised later without invalidating stored hashes. API tokens are 32 random
// bytes shown once; only their SHA-256 is stored.
//
// Users and tokens are never deleted, because the audit trail refers to them
// by name: a user is disabled (SetDisabled) and a token revoked
// (RevokeToken) instead, and their names stay taken. The store refuses to
// disable or demote the last enabled admin (ErrLastAdmin, ECONFLICT).
//
// Layout of the bbolt file:
//
//	users        name → JSON record (User fields and the PHC hash)
//	tokens       SHA-256 of the token → JSON record (name, role, teams, created, disabled = revoked)
//	token_names  token name → SHA-256 of the token
package users
