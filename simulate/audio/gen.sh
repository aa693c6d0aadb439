#!/bin/sh
# Regenerates the embedded speech clips (see README.md). Needs espeak-ng and sox.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

clip() { # name voice speed pitch text
	espeak-ng -v "$2" -s "$3" -p "$4" -w "$tmp/$1.wav" "$5"
	# 8 kHz mono μ-law, then 300 ms of trailing pause.
	sox "$tmp/$1.wav" -r 8000 -c 1 -e mu-law -t raw "$tmp/$1.raw" pad 0 0.3
	# Pad with μ-law silence (0xFF) to a whole number of 160-byte frames.
	n=$(wc -c <"$tmp/$1.raw")
	pad=$(( (160 - n % 160) % 160 ))
	cp "$tmp/$1.raw" "$1.ulaw"
	if [ "$pad" -gt 0 ]; then
		head -c "$pad" /dev/zero | tr '\000' '\377' >>"$1.ulaw"
	fi
}

clip customer-1 en-us+m3 150 45 "Hello, I'd like to check the balance of my account, please."
clip customer-2 en-us+m3 150 45 "Yes, the account number is four five seven, two two one, nine."
clip customer-3 en-us+m3 150 45 "I was charged twice last month and I would like a refund."
clip agent-1 en-gb+f3 160 60 "Thank you for calling, how can I help you today?"
clip agent-2 en-gb+f3 160 60 "Sure, can you confirm your date of birth and the account number?"
clip agent-3 en-gb+f3 160 60 "I can see the duplicate charge. I will issue the refund right away."
