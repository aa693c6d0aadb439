#!/bin/sh
# Unpacks Debian's nginx and haproxy (with the libraries they need that the
# machine lacks) under test/deploy/.tools, without installing them: no
# service is started and nothing outside this folder changes. validate.mjs
# then runs `nginx -t` and `haproxy -c` on deploy/'s configs. Nothing here is
# required: without apt-get, or when a download fails, those two checks are
# skipped and say so.
set -u
cd "$(dirname "$0")"
dest=.tools
if [ -x "$dest/usr/sbin/nginx" ] && [ -x "$dest/usr/sbin/haproxy" ]; then exit 0; fi
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
	echo "fetch-tools: no apt-get/dpkg-deb here; the nginx and haproxy checks will be skipped"
	exit 0
fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
depends() {
	apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
		--no-replaces --no-enhances "$@" 2>/dev/null |
		awk '$1 ~ /^(Pre)?Depends:$/ { print $2 }' | grep -v '^<' | sort -u
}
resolve() {
	all="nginx haproxy"
	next=$all
	for _ in 1 2 3 4; do
		new=""
		for p in $(depends $next); do
			case " $all " in *" $p "*) continue ;; esac
			installed "$p" || new="$new $p"
		done
		[ -z "$new" ] && break
		all="$all$new"
		next=$new
	done
	echo "$all"
}

pkgs=$(resolve)
case "$pkgs" in *nginx*haproxy*) ;; *) pkgs="" ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch() { [ -n "$pkgs" ] && (cd "$tmp" && apt-get download $pkgs >/dev/null 2>&1); }
if ! fetch; then
	# No package lists yet (a fresh machine): read them once and retry.
	SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update >/dev/null 2>&1 || true
	pkgs=$(resolve)
	if ! fetch; then
		echo "fetch-tools: could not download nginx/haproxy from Debian; their checks will be skipped"
		exit 0
	fi
fi
mkdir -p "$dest"
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$dest"; done
echo "fetch-tools: unpacked $(ls "$tmp" | wc -l) packages (nginx, haproxy and their missing libraries) into test/deploy/$dest"
