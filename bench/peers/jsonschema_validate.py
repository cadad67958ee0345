# SPDX-License-Identifier: Apache-2.0
"""bench/peers/jsonschema_validate.py: the Python peer of evvalidate in bench/run.

The contract is compiled once with jsonschema's Draft7Validator (formats asserted, date-time
through rfc3339-validator); each stdin line is parsed and validated, and a valid line is
written to stdout unchanged. The count of valid lines goes to stderr.

    python jsonschema_validate.py contracts/event.schema.json < events > valid
"""
import json
import sys

from jsonschema import Draft7Validator, FormatChecker


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        validator = Draft7Validator(json.load(f), format_checker=FormatChecker())
    out = sys.stdout.buffer
    valid = 0
    for line in sys.stdin.buffer:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if validator.is_valid(record):
            out.write(line)
            valid += 1
    print(valid, file=sys.stderr)


if __name__ == "__main__":
    main()
