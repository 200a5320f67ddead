// Whether CPython 3.11's json.loads(s) would succeed, without building any value.
#pragma once

#include "unicode.h"

namespace hirfast {

// json.loads(s) succeeds: the C scanner's grammar (NaN, Infinity, -Infinity accepted; any
// top-level value; only ' \t\n\r' as whitespace; no raw control characters inside strings;
// a leading U+FEFF refused), plus the two limits that make it raise on valid-looking input:
// integers of more than 4300 digits (ValueError from int()) and nesting deeper than the
// interpreter's recursion limit (RecursionError, counted as a failure here as the reference's
// harness counts exceptions).
bool python_json_loads_ok(U32View s);

}  // namespace hirfast
