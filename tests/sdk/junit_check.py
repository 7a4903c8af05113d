"""Reads a JUnit XML file with junitparser (Debian's python3-junitparser), the parser CI
services' JUnit importers are modelled on, and prints what it found: one line per test case
with a result ("<result> <name>: <message>"), then "cases <n>". Exit 1 when it cannot parse."""
import sys

from junitparser import JUnitXml

xml = JUnitXml.fromfile(sys.argv[1])
cases = 0
for suite in xml:
    for case in suite:
        cases += 1
        for result in case.result:
            print(f"{type(result).__name__.lower()} {case.name}: {result.message}")
print(f"cases {cases}")
