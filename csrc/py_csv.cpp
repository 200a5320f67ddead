#include "py_csv.h"

namespace hirfast {
namespace {

constexpr size_t kFieldSizeLimit = 131072;  // csv.field_size_limit() default
constexpr char32_t kEol = 0xFFFFFFFEu;      // _csv.c's end-of-line marker (not a code point)

enum class State {
  kStartRecord,
  kStartField,
  kInField,
  kInQuotedField,
  kQuoteInQuotedField,
  kEatCrnl,
};

class CsvParser {
 public:
  explicit CsvParser(char32_t delimiter) : delimiter_(delimiter) {}

  // parse_process_char; false on csv.Error (message in error_).
  bool process(char32_t c) {
    switch (state_) {
      case State::kStartRecord:
        if (c == kEol) return true;  // an empty line: an empty record
        if (c == '\n' || c == '\r') {
          state_ = State::kEatCrnl;
          return true;
        }
        state_ = State::kStartField;
        [[fallthrough]];
      case State::kStartField:
        if (c == '\n' || c == '\r' || c == kEol) {
          save_field();
          state_ = c == kEol ? State::kStartRecord : State::kEatCrnl;
        } else if (c == '"') {
          state_ = State::kInQuotedField;
        } else if (c == delimiter_) {
          save_field();
        } else {
          if (!add_char(c)) return false;
          state_ = State::kInField;
        }
        return true;
      case State::kInField:
        if (c == '\n' || c == '\r' || c == kEol) {
          save_field();
          state_ = c == kEol ? State::kStartRecord : State::kEatCrnl;
        } else if (c == delimiter_) {
          save_field();
          state_ = State::kStartField;
        } else if (!add_char(c)) {
          return false;
        }
        return true;
      case State::kInQuotedField:
        if (c == kEol) return true;
        if (c == '"') {
          state_ = State::kQuoteInQuotedField;
          return true;
        }
        return add_char(c);
      case State::kQuoteInQuotedField:
        if (c == '"') {
          state_ = State::kInQuotedField;
          return add_char(c);
        }
        if (c == delimiter_) {
          save_field();
          state_ = State::kStartField;
        } else if (c == '\n' || c == '\r' || c == kEol) {
          save_field();
          state_ = c == kEol ? State::kStartRecord : State::kEatCrnl;
        } else {
          if (!add_char(c)) return false;
          state_ = State::kInField;
        }
        return true;
      case State::kEatCrnl:
        if (c == '\n' || c == '\r') return true;
        if (c == kEol) {
          state_ = State::kStartRecord;
          return true;
        }
        error_ = "new-line character seen in unquoted field - do you need to open the file with newline=''?";
        return false;
    }
    return true;
  }

  State state() const { return state_; }
  bool field_pending() const { return !field_.empty(); }
  void save_field() {
    fields_.push_back(std::move(field_));
    field_.clear();
  }
  std::vector<U32> take_record() {
    std::vector<U32> out = std::move(fields_);
    fields_.clear();
    return out;
  }
  const std::string& error() const { return error_; }

 private:
  bool add_char(char32_t c) {
    if (field_.size() >= kFieldSizeLimit) {
      error_ = "field larger than field limit (131072)";
      return false;
    }
    field_.push_back(c);
    return true;
  }

  char32_t delimiter_;
  State state_ = State::kStartRecord;
  U32 field_;
  std::vector<U32> fields_;
  std::string error_;
};

}  // namespace

CsvStatus py_csv_read(U32View text, char32_t delimiter, size_t max_rows,
                      std::vector<std::vector<U32>>* rows, std::string* error) {
  rows->clear();
  CsvParser parser(delimiter);
  size_t pos = 0;
  // Reader_iternext: read lines until the record is complete (state back at START_RECORD).
  while (true) {
    if (pos >= text.size()) {
      // End of input inside a record: a pending field or an open quote is saved (not strict).
      if (parser.field_pending() || parser.state() == State::kInQuotedField) {
        parser.save_field();
        rows->push_back(parser.take_record());
      }
      break;
    }
    size_t newline = text.find(U'\n', pos);
    size_t end = newline == U32View::npos ? text.size() : newline + 1;
    for (size_t k = pos; k < end; ++k) {
      if (!parser.process(text[k])) {
        if (error) *error = parser.error();
        return CsvStatus::kError;
      }
    }
    pos = end;
    if (!parser.process(kEol)) {
      if (error) *error = parser.error();
      return CsvStatus::kError;
    }
    if (parser.state() == State::kStartRecord) {
      rows->push_back(parser.take_record());
      if (rows->size() > max_rows) return CsvStatus::kTooMany;
    }
  }
  return CsvStatus::kOk;
}

}  // namespace hirfast
