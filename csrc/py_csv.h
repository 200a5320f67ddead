// csv.reader(io.StringIO(text), delimiter=d) of CPython 3.11 with the default "excel" dialect
// otherwise (quotechar '"', doublequote, no escapechar, not strict, field_size_limit 131072).
//
// io.StringIO splits lines at "\n" only (each line keeps its "\n"); the reader's state machine
// then sees every character of a line followed by an end-of-line marker, so a "\r" is a line
// break inside a line, a "\r" followed by more text is csv.Error ("new-line character seen in
// unquoted field"), and quoted fields may span lines. NUL characters are ordinary in 3.11.
#pragma once

#include <string>
#include <vector>

#include "unicode.h"

namespace hirfast {

enum class CsvStatus {
  kOk,        // all rows read
  kError,     // csv.Error: list(reader) raises
  kTooMany,   // stopped after max_rows + 1 rows (the caller only needs to know there are more)
};

CsvStatus py_csv_read(U32View text, char32_t delimiter, size_t max_rows,
                      std::vector<std::vector<U32>>* rows, std::string* error = nullptr);

}  // namespace hirfast
