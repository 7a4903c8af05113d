"""Validates a SARIF file against the SARIF 2.1.0 JSON schema (draft-04) with Debian's
python3-jsonschema. Prints "valid", or each violation as "<JSON path>: <message>" and exits 1.

usage: sarif_check.py SCHEMA FILE"""
import json
import sys

import jsonschema

with open(sys.argv[1], encoding="utf-8") as f:
    schema = json.load(f)
with open(sys.argv[2], encoding="utf-8") as f:
    document = json.load(f)
jsonschema.Draft4Validator.check_schema(schema)
errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(document), key=lambda e: list(e.absolute_path))
for error in errors:
    print("/" + "/".join(str(p) for p in error.absolute_path) + ": " + error.message)
if errors:
    sys.exit(1)
print("valid")
