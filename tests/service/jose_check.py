#!/usr/bin/python3
"""An independent JOSE implementation (python3-jwcrypto) checks what cloister-attestd sends:
the EAR token's ES384 signature against the service's JWKS, and the resource JWE decrypted with
the TEE's private key.

usage: jose_check.py JWKS_JSON TOKEN_FILE JWE_JSON TEE_KEY_PEM
Prints the token's ear.status and the decrypted resource."""
import json
import sys

from jwcrypto import jwe, jwk, jws

jwks = jwk.JWKSet.from_json(open(sys.argv[1]).read())
token = open(sys.argv[2]).read().strip()
signed = jws.JWS()
signed.deserialize(token)
header = signed.jose_header
key = jwks.get_key(header["kid"])
signed.verify(key, alg="ES384")
claims = json.loads(signed.payload)
print("token:", header["alg"], "status", claims["submods"]["cpu0"]["ear.status"])

tee_key = jwk.JWK.from_pem(open(sys.argv[4], "rb").read())
envelope = jwe.JWE()
envelope.deserialize(open(sys.argv[3]).read(), key=tee_key)
print("resource:", envelope.payload.decode())
