#!/bin/bash
# Regenerate the unit-test PKI with strongSwan's `pki` (an independent implementation):
# two roots (ECDSA P-256, RSA-2048), an ECDSA intermediate, end-entity certificates of
# every key type, a revoked certificate and its CRL, an expired certificate and an
# unknown CA. keyids.txt holds `pki --keyid` (SHA-1 of each CA's SubjectPublicKeyInfo:
# the CERTREQ hashes of RFC 7296 §3.7) as strongSwan computes them.
# Validity 2025..2045 so the tests (clock fixed at 2030-01-01) never expire.
set -eu
cd "$(dirname "$0")"
P() { pki "$@" 2>/dev/null; }
D=(--dateform "%d.%m.%Y" --not-before 01.01.2025 --not-after 01.01.2045)
umask 077
rm -f ./*.crt ./*.key ./*.crl keyids.txt
P --gen --type ecdsa --size 256 --outform pem > ca-ec.key
P --self --ca "${D[@]}" --in ca-ec.key --type ecdsa --dn "C=XX, O=pk-test, CN=pk-test ECDSA CA" --outform pem > ca-ec.crt
P --gen --type rsa --size 2048 --outform pem > ca-rsa.key
P --self --ca "${D[@]}" --in ca-rsa.key --type rsa --dn "C=XX, O=pk-test, CN=pk-test RSA CA" --outform pem > ca-rsa.crt
P --gen --type ecdsa --size 256 --outform pem > ca-x.key
P --self --ca "${D[@]}" --in ca-x.key --type ecdsa --dn "C=XX, O=elsewhere, CN=unknown CA" --outform pem > ca-x.crt
P --gen --type ecdsa --size 384 --outform pem > int-ec.key
P --pub --in int-ec.key --type ecdsa | P --issue --ca "${D[@]}" --cacert ca-ec.crt --cakey ca-ec.key \
	--dn "C=XX, O=pk-test, CN=pk-test intermediate" --outform pem > int-ec.crt
leaf() {  # name keytype keysize cacert cakey [extra pki args]
	local n=$1 t=$2 s=$3 c=$4 k=$5; shift 5
	if [ "$t" = ed25519 ]; then P --gen --type ed25519 --outform pem > $n.key
	else P --gen --type $t --size $s --outform pem > $n.key; fi
	P --pub --in $n.key --type priv | P --issue --cacert $c --cakey $k --dn "C=XX, O=pk-test, CN=$n.pk.test" \
		--san $n.pk.test --flag serverAuth --flag clientAuth "$@" --outform pem > $n.crt
}
leaf a-ec ecdsa 256 ca-ec.crt ca-ec.key "${D[@]}" --san 10.231.0.1 --san alice@pk.test --serial 0a01
leaf b-ec ecdsa 256 int-ec.crt int-ec.key "${D[@]}" --serial 0b01
leaf a-rsa rsa 2048 ca-rsa.crt ca-rsa.key "${D[@]}" --serial 0a02
leaf b-rsa rsa 2048 ca-rsa.crt ca-rsa.key "${D[@]}" --serial 0b02
leaf p384 ecdsa 384 ca-ec.crt ca-ec.key "${D[@]}"
leaf p521 ecdsa 521 ca-ec.crt ca-ec.key "${D[@]}"
leaf ed ed25519 0 ca-ec.crt ca-ec.key "${D[@]}"
leaf revoked ecdsa 256 ca-ec.crt ca-ec.key "${D[@]}" --serial 0bad
leaf old ecdsa 256 ca-ec.crt ca-ec.key --dateform "%d.%m.%Y" --not-before 01.01.2020 --not-after 01.01.2021
leaf x ecdsa 256 ca-x.crt ca-x.key "${D[@]}"
P --signcrl --cacert ca-ec.crt --cakey ca-ec.key --dateform "%d.%m.%Y" --this-update 01.01.2025 \
	--next-update 01.01.2045 --reason key-compromise --cert revoked.crt --outform pem > ca-ec.crl
for c in ca-ec ca-rsa ca-x int-ec; do
	echo "$c $(P --keyid --type x509 --id spki --format hex --in $c.crt)" >> keyids.txt
done
chmod 600 ./*.key
chmod 644 ./*.crt ./*.crl keyids.txt
