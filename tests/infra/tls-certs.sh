#!/usr/bin/env bash
# Generates throw-away TLS material for a private test broker (openssl only).
# Usage: tls-certs.sh DIR
#   DIR/ca.pem            test CA certificate (trusted by broker and clients)
#   DIR/server.pem        broker key (PKCS#8, unencrypted) + certificate for
#                         127.0.0.1 / localhost, signed by the CA (a PEM keystore)
#   DIR/client.pem        client certificate (CN=lagwatch), signed by the CA
#   DIR/client.key        client key, encrypted (AES-256) with the password in
#   DIR/client.key.password
#   DIR/other-ca.pem      an unrelated CA: trusting only it must fail
# Idempotent: does nothing when DIR/ca.pem exists. Keys are 2048-bit RSA,
# certificates valid for 2 days; nothing here is meant to outlive a test.
set -euo pipefail
dir="${1:?DIR}"
if [[ -s "$dir/ca.pem" && -s "$dir/client.key.password" ]]; then exit 0; fi
mkdir -p "$dir"
cd "$dir"
quiet() { "$@" >>openssl.log 2>&1 || { echo "tls-certs: $* failed:" >&2; tail -n 20 openssl.log >&2; exit 1; }; }

ca() { # NAME SUBJECT
    quiet openssl req -x509 -newkey rsa:2048 -nodes -days 2 -sha256 \
        -subj "$2" -keyout "$1-key.pem" -out "$1.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
ca ca "/CN=lagwatch test CA"
ca other-ca "/CN=lagwatch unrelated CA"

# Broker: key + certificate chain in one PEM file (Kafka's PEM keystore).
quiet openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server-key.pem -out server.csr
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
quiet openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -sha256 \
    -extfile server.ext -out server-cert.pem
quiet openssl pkcs8 -topk8 -nocrypt -in server-key.pem -out server-key.pk8
cat server-key.pk8 server-cert.pem >server.pem

# Client (mTLS): certificate plus an encrypted key.
openssl rand -hex 16 >client.key.password
quiet openssl req -newkey rsa:2048 -nodes -subj "/CN=lagwatch" -keyout client-key-plain.pem -out client.csr
printf 'extendedKeyUsage=clientAuth\n' >client.ext
quiet openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -sha256 \
    -extfile client.ext -out client.pem
quiet openssl pkcs8 -topk8 -v2 aes-256-cbc -in client-key-plain.pem -out client.key \
    -passout "file:client.key.password"
rm -f client-key-plain.pem server-key.pem server-key.pk8 ./*.csr ./*.ext
chmod 600 ./*key* client.key.password
