// Package lb is the WebSocket tier in front of the mediaadapter pool:
//
//	Twilio Media Streams ──wss upgrade (signed)──► lb ──► mediaadapter (least streams) ──► recorder
//
// It accepts Twilio's Media Streams upgrades (GET on the configured path with
// Upgrade: websocket and X-Twilio-Signature) and proxies each one, bytes
// unchanged in both directions, to the healthy, non-draining adapter with the
// fewest active streams; the copies of a dual-stream pair, on
// <path>/pair/<group>/<copy>, go to distinct adapters chosen by rendezvous
// hashing instead (see "Dual-stream pairs"). It has no state of its own worth keeping: several lb
// instances run side by side behind DNS or a cloud load balancer, and real
// deployments may use nginx, HAProxy or a cloud LB instead (see deploy/).
//
// # Forwarding rules
//
// The adapter checks Twilio's signature against its configured public URL
// (HMAC-SHA1 over wss://host/path, nothing else for a GET), never against
// request headers, so the lb changes nothing the signature or the WebSocket
// handshake depends on:
//
//   - Method, path and query go to the adapter byte for byte (the raw query
//     too: ReverseProxy's cleaning of unparsable parameters is undone). Only
//     the scheme and host of Backend.URL are used; its path is ignored.
//   - Host keeps the client's value.
//   - Every end-to-end header passes unchanged: X-Twilio-Signature,
//     Sec-WebSocket-Key, -Version, -Protocol, -Extensions, User-Agent…
//     Hop-by-hop headers are dropped as HTTP requires, then Connection: Upgrade
//     and Upgrade: websocket are set again.
//   - Forwarding headers are the lb's own. By default (TrustForwarded false)
//     the client's Forwarded, X-Real-Ip and every X-Forwarded-* header are
//     removed, and the lb sets exactly three:
//     X-Forwarded-For = the client's IP address (from the TCP peer, no port);
//     X-Forwarded-Proto = "https" if the lb's listener is TLS, else "http";
//     X-Forwarded-Host = the Host the client asked for.
//     With TrustForwarded (the lb sits behind a proxy of ours that sets them),
//     the client's Forwarded, X-Real-Ip and X-Forwarded-* headers pass, and the
//     lb appends the peer's IP to X-Forwarded-For and sets X-Forwarded-Proto and
//     X-Forwarded-Host only where the upstream proxy did not.
//   - The adapter's answer goes back unchanged: 101 and its
//     Sec-WebSocket-Accept, or a refusal such as 403 for a bad signature. A
//     refusal below 500 is the adapter's verdict and is not retried.
//
// # Selection
//
// For each upgrade the lb reads the current view from Backends, skips
// draining adapters (and those already tried for this upgrade), and picks the
// lowest load, ties broken at random:
//
//	load = reported Active + f × (this lb's upgrades to it still being dialed
//	                              + its connections to it established since that report)
//
// A report counts as new when the adapter's Active value changes: the lb's
// established connections are then in it, so they stop counting on top; a
// connection that ends before the next report stops counting at once. The
// view is read at every pick, so an adapter that left it gets no new
// connection; connections already proxied to it run on until they end,
// because cutting Twilio's socket ends the stream.
//
// f, the peer factor, is the lb's estimate of how many lbs feed the pool:
// the pool's streams (reported, plus its own not yet reported) over its own
// established connections, that is one over its share of the traffic,
// clamped to [1, 8], and 1 while it holds fewer than 20 connections. Alone,
// f is 1 and the rule is plain least-connections with its own connections
// counted at once. The metric callrec_lb_peer_factor shows it.
//
// Why it spreads. Between two reports one lb levels the pool with its own
// connections, so a burst spreads exactly (300 upgrades between two reports
// land 100/100/100 on three adapters). Several lbs side by side all start
// from the same reports; from a level pool each levels its own share, so
// adapters differ by at most one connection per lb until the next report
// shows everyone's. The danger is a report that shows a gap (an adapter that
// just joined, or one that got fewer by chance): every lb fills it with its
// own connections, so with k lbs the gap receives k times what it needed,
// and the next report shows a gap (k-1) times as large on the other side.
// With three or more lbs this swings wider at each report, up to the number
// of upgrades all lbs receive between two reports (measured: 5 lbs, reports
// every 100 upgrades, adapters 16 to 29 % off their share). Weighing its own
// connections by f makes each lb fill only its share of a gap, since the
// other lbs, seeing the same report, fill theirs: the pool then stays within
// a few connections of level (same measurement: at most 3 % off; TestSpread
// holds every case to 100 ± 10 of 300). What remains is the noise of
// reports that miss upgrades still in flight, a few per report interval at
// Twilio's call rates.
//
// # Dual-stream pairs
//
// With dual-stream capture the tracker starts two Twilio streams per call
// carrying the same audio, copy k to <Path>/pair/<PathEscape(group)>/<k>.
// Such an upgrade is not placed by load: it goes to the k-th adapter of the
// group's rendezvous ranking of the healthy, non-draining adapters (highest
// score(group, adapter name) first; a 64-bit FNV-1a of both, mixed by the
// splitmix64 finalizer), wrapping around when there are fewer adapters than
// k. The ranking depends on nothing but the group and the adapters' names,
// so:
//
//   - every lb instance with the same view sends a copy to the same adapter,
//     without talking to the others;
//   - the copies of a pair land on different adapters whenever there are at
//     least as many adapters as copies, so one adapter (or its recorder)
//     failing loses no audio;
//   - an adapter leaving moves only the pairs that had a copy on it (it
//     drops out of each ranking, nothing else moves), and coming back puts
//     them where they were.
//
// A failed attempt (see Failover) tries the next untried adapter of the
// ranking; under failure both copies may then share an adapter. The path
// reaches the adapter unchanged, like any other. A path under <Path>/pair/
// that is not exactly <group>/<copy> (group 1..256 bytes once unescaped,
// copy 1..4 in decimal) is answered 404 with a log line saying why, and
// counted as callrec_lb_requests_rejected_total{reason="bad_pair_path"}.
//
// # Failover
//
// If the chosen adapter refuses the connection, does not answer within
// DialTimeout, or answers the upgrade with a 5xx (a draining adapter answers
// 503), the lb tries the next best adapter, up to MaxAttempts adapters. None of
// this reaches the client: nothing is written to it before an adapter has
// accepted. When every attempt fails the client gets 503.
//
// # Serving it
//
// The caller mounts LB on an http.Server next to its own /healthz. Upgraded
// connections are hijacked, so http.Server.Shutdown does not wait for them:
// LB.Shutdown does. The server's ReadTimeout and WriteTimeout do not cut
// calls (their deadlines are cleared on the hijacked connection).
package lb
