#!/usr/bin/env python3
"""A test identity provider's tools (RS256 with openssl): `jwt_tool.py jwks PEM[:KID]...` prints a JWKS of the
keys' public halves; `jwt_tool.py token CLAIMS_JSON PEM [KID]` prints a JWT of the claims signed with the key."""
import base64, json, subprocess, sys
b = lambda x: base64.urlsafe_b64encode(x).decode().rstrip("=")
mode, arg = sys.argv[1], sys.argv[2]
if mode == "jwks":
    keys = []
    for spec in sys.argv[2:]:
        pem, _, kid = spec.partition(":")
        mod = subprocess.run(["openssl", "rsa", "-in", pem, "-noout", "-modulus"], capture_output=True, text=True).stdout
        n = bytes.fromhex(mod.strip().split("=", 1)[1])
        keys.append({"kty": "RSA", "kid": kid or "idp1", "use": "sig", "alg": "RS256", "n": b(n), "e": "AQAB"})
    print(json.dumps({"keys": keys}))
else:
    claims, key = json.loads(arg), sys.argv[3]
    kid = sys.argv[4] if len(sys.argv) > 4 else "idp1"
    signing = b(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode()) + "." + b(json.dumps(claims).encode())
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing.encode(), capture_output=True).stdout
    print(signing + "." + b(sig))
