#!/usr/bin/env bash
# Makes a development PKI in DIR: ca.pem, server.pem/key (localhost, 127.0.0.1) and a
# device client certificate device.pem/key. Used by `make run` and the cross smoke.
set -euo pipefail
pki=${1:?usage: make-certs.sh DIR}
mkdir -p "$pki"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=Assent development CA" -keyout "$pki/ca.key" -out "$pki/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$pki/server.key" -out "$pki/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$pki/server.ext"
openssl x509 -req -in "$pki/server.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 825 -extfile "$pki/server.ext" -out "$pki/server.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=dev-device" \
    -keyout "$pki/device.key" -out "$pki/device.csr" 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' > "$pki/device.ext"
openssl x509 -req -in "$pki/device.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" \
    -CAcreateserial -days 825 -extfile "$pki/device.ext" -out "$pki/device.pem" 2>/dev/null
chmod 600 "$pki"/*.key
