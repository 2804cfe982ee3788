#!/usr/bin/env python3
"""Makes the interop fixtures: keys and tokens made by OpenSSL (through
pyca/cryptography), not by Go, so the tests check this package against an
independent signer. Run from this directory; it rewrites every fixture with
new keys. The private keys are not kept.

    python3 gen.py
"""
import base64, hashlib, hmac, json, os, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, padding, utils

NOW = 1700000000  # the tests' clock (testNow)

def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def compact(header, claims, sign):
    # separators and key order as a Python issuer would send them
    signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    return signing_input + "." + b64(sign(signing_input.encode()))

def write(name, data):
    with open(name, "wb") as f:
        f.write(data)

ec_key = ec.generate_private_key(ec.SECP256R1())
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
secret = os.urandom(32).hex().encode()  # 64 printable bytes, as `openssl rand -hex 32` makes

pkix = serialization.PublicFormat.SubjectPublicKeyInfo
write("es256.pub.pem", ec_key.public_key().public_bytes(serialization.Encoding.PEM, pkix))
write("rs256.pub.pem", rsa_key.public_key().public_bytes(serialization.Encoding.PEM, pkix))
write("rs256.pkcs1.pem", rsa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1))
write("hs256.secret", secret + b"\n")

name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wsgate jwtauth test signer")])
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(ec_key.public_key()).serial_number(1)
        .not_valid_before(datetime.datetime(2023, 1, 1)).not_valid_after(datetime.datetime(2023, 1, 2))
        .sign(ec_key, hashes.SHA256()))
write("es256.crt", cert.public_bytes(serialization.Encoding.PEM))

def es256(data):
    r, s = utils.decode_dss_signature(ec_key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")

def es256_der(data):
    return ec_key.sign(data, ec.ECDSA(hashes.SHA256()))

def rs256(data):
    return rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

def hs256_with(key):
    return lambda data: hmac.new(key, data, hashlib.sha256).digest()

claims = {"sub": "user-42", "aud": ["wsgate", "other"], "iss": "https://issuer.test",
          "iat": NOW - 60, "nbf": NOW - 60, "exp": NOW + 3600, "room": "lobby"}
expired = dict(claims, exp=NOW - 3600)
rsa_pem = open("rs256.pub.pem", "rb").read()

cases = [
    ("ES256", "es256.pub.pem", compact({"alg": "ES256", "typ": "JWT"}, claims, es256), ""),
    ("ES256, key from a certificate", "es256.crt", compact({"alg": "ES256", "typ": "JWT", "kid": "k1"}, claims, es256), ""),
    ("RS256", "rs256.pub.pem", compact({"alg": "RS256", "typ": "JWT"}, claims, rs256), ""),
    ("RS256, PKCS#1 key", "rs256.pkcs1.pem", compact({"alg": "RS256"}, claims, rs256), ""),
    ("HS256", "hs256.secret", compact({"alg": "HS256", "typ": "JWT"}, claims, hs256_with(secret)), ""),
    ("ES256 expired", "es256.pub.pem", compact({"alg": "ES256"}, expired, es256), "expired"),
    ("ES256 signature in ASN.1 DER", "es256.pub.pem", compact({"alg": "ES256"}, claims, es256_der), "signature"),
    ("HS256 with the secret's newline", "hs256.secret", compact({"alg": "HS256"}, claims, hs256_with(secret + b"\n")), "signature"),
    ("key confusion: HS256 keyed with the RSA public key PEM", "rs256.pub.pem", compact({"alg": "HS256"}, claims, hs256_with(rsa_pem)), "algorithm"),
    ("alg none", "rs256.pub.pem", b64(b'{"alg":"none"}') + "." + b64(json.dumps(claims).encode()) + ".", "algorithm"),
    ("RS256 token on the EC key", "es256.pub.pem", compact({"alg": "RS256"}, claims, rs256), "algorithm"),
]
with open("interop.json", "w") as f:
    json.dump([{"name": n, "key": k, "token": t, "reason": r} for n, k, t, r in cases], f, indent=1)
    f.write("\n")
