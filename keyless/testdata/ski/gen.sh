#!/bin/sh
# Regenerates the certificates TestSKIOfOpenSSL reads. OpenSSL computes the
# subjectKeyIdentifier=hash extension as SHA-1 of the subjectPublicKey BIT
# STRING contents (RFC 5280 method 1), independently of Go, so each
# certificate's SKI extension is the answer SKIOf must give for its key.
# Run from this directory: sh gen.sh
set -eu
cnf=$(mktemp)
trap 'rm -f "$cnf"' EXIT
printf '[req]\ndistinguished_name=dn\nx509_extensions=ext\nprompt=no\n[dn]\nCN=keyless ski test\n[ext]\nsubjectKeyIdentifier=hash\n' >"$cnf"
gen() { # name, then -newkey arguments
	name=$1
	shift
	openssl req -x509 -config "$cnf" -nodes -keyout /dev/null -days 36500 -out "$name.pem" "$@" 2>/dev/null
}
gen rsa2048 -newkey rsa:2048
gen rsa3072-e3 -newkey rsa:3072 -pkeyopt rsa_keygen_pubexp:3
gen p224 -newkey ec -pkeyopt ec_paramgen_curve:P-224
gen p256 -newkey ec -pkeyopt ec_paramgen_curve:P-256
gen p384 -newkey ec -pkeyopt ec_paramgen_curve:P-384
gen p521 -newkey ec -pkeyopt ec_paramgen_curve:P-521
gen ed25519 -newkey ed25519
