#!/usr/bin/python3
"""Validates KBS wire bodies against Trustee's OpenAPI document (kbs-openapi.yaml, from
trustee@78962cd4:kbs/docs/kbs.yaml) with a JSON Schema validator (python3-jsonschema).

usage: openapi_check.py KBS_OPENAPI_YAML DIR
DIR holds <Schema>.<n>.json files (Request, Challenge, Attestation, AttestationToken,
JweResponse, ErrorInformation); each is validated against #/components/schemas/<Schema>. The
token's JOSE header is also checked against AttestationTokenHeader and the JWE's protected
header against KeyHeader, and every ErrorInformation's type against the errors URL prefix.

Where Trustee's implementation and its document disagree, the implementation is the wire (the
clients are built against it), and the difference is allowed here by name only:
- Challenge.extra-params: the document says object; Trustee v0.21 sends the string "".
- Attestation.init-data: the document says object; guest-components sends null when absent.
The document refers to a RuntimeData schema it never defines; it is supplied here from
kbs-types' RuntimeData (research/service.md §a.3): {"nonce": string, "tee-pubkey": TeePubKey}.
"""
import base64
import json
import pathlib
import sys

import jsonschema
import yaml

KNOWN_DEVIATIONS = {
    ("Challenge", "extra-params"): lambda v: v == "",
    ("Attestation", "init-data"): lambda v: v is None,
}


def b64url_json(text):
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def main():
    spec = yaml.safe_load(open(sys.argv[1]))
    schemas = spec["components"]["schemas"]
    schemas.setdefault("RuntimeData", {
        "type": "object",
        "required": ["nonce", "tee-pubkey"],
        "properties": {
            "nonce": {"type": "string"},
            "tee-pubkey": {"$ref": "#/components/schemas/TeePubKey"},
        },
    })
    root = {"components": {"schemas": schemas}}
    checked = 0
    for path in sorted(pathlib.Path(sys.argv[2]).glob("*.json")):
        name = path.name.split(".")[0]
        body = json.loads(path.read_text())
        for (schema, member), allowed in KNOWN_DEVIATIONS.items():
            if schema == name and member in body and allowed(body[member]):
                del body[member]
        resolver = jsonschema.RefResolver.from_schema(root)
        try:
            jsonschema.validate(body, schemas[name], resolver=resolver)
            if name == "AttestationToken":
                header = b64url_json(body["token"].split(".")[0])
                jsonschema.validate(header, schemas["AttestationTokenHeader"], resolver=resolver)
            if name == "JweResponse":
                jsonschema.validate(b64url_json(body["protected"]), schemas["KeyHeader"])
            if name == "ErrorInformation":
                assert body["type"].startswith(
                    "https://github.com/confidential-containers/kbs/errors/"), body["type"]
        except (jsonschema.ValidationError, AssertionError) as e:
            print(f"{path.name}: does not match {name}: {e}", file=sys.stderr)
            return 1
        checked += 1
    if checked == 0:
        print(f"no bodies in {sys.argv[2]}", file=sys.stderr)
        return 1
    print(f"{checked} bodies match Trustee's KBS OpenAPI schemas")
    return 0


if __name__ == "__main__":
    sys.exit(main())
