// MulDimIF: the 55 constraint keys of the reference's class_mapping, registered as instruction
// ids "muldimif:<category>_<subcategory>" with one kwarg, "text" (the constraint's text).
#include <atomic>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include "assets.h"
#include "checks_muldimif.h"
#include "engine.h"

namespace hirfast {
namespace {

using MdFn = bool (*)(U32View, U32View);

using MdPlanFn = MdCheck (*)(U32View);

class MdChecker final : public Checker {
 public:
  explicit MdChecker(MdCheck check) : check_(std::move(check)) {}
  bool check(U32View response) const override { return check_(response); }
  bool ifeval_semantics() const override { return false; }

 private:
  MdCheck check_;
};

// The check of `text` by `fn`: its plan where the class has one. A text the reference raises on
// whatever the response is an InputError (ConstraintError in Python, field "kwargs.text"); other
// failures while planning are raised again by every check (counted as not followed).
MdCheck make_check(MdFn fn, U32 text) {
  static const std::pair<MdFn, MdPlanFn> kPlans[] = {
      {md_length_words, md_length_words_plan},         {md_format_markdown, md_format_markdown_plan},
      {md_format_table, md_format_table_plan},         {md_content_keywords, md_content_keywords_plan},
      {md_length_sentences, md_length_sentences_plan}, {md_language_english, md_language_english_plan},
      {md_format_others, md_format_others_plan},       {md_content_others, md_content_others_plan},
  };
  for (const auto& p : kPlans) {
    if (p.first != fn) continue;
    try {
      return p.second(text);
    } catch (const MdRaise& e) {
      // The reference would raise on every response: bad input, named like a bad kwarg.
      throw InputError("kwargs.text", std::string("the MulDimIF reference raises on this constraint text (") +
                                          e.what() + ")");
    } catch (const AssetError&) {
      throw;
    } catch (const std::exception&) {
      std::exception_ptr e = std::current_exception();
      return [e](U32View) -> bool { std::rethrow_exception(e); };
    }
  }
  auto shared = std::make_shared<const U32>(std::move(text));
  return [fn, shared](U32View t) { return fn(*shared, t); };
}

std::atomic<MdZhconvHook> zhconv_hook{nullptr};

// Language_Chinese without zhconv: the rules that need no conversion table are answered here;
// the others raise (hirfast.verify answers every Language_Chinese constraint with zhconv instead).
bool md_language_chinese(U32View c, U32View t) {
  U32 phrase;
  const MdChineseRule rule = md_chinese_rule(c, &phrase);
  switch (rule) {
    case MdChineseRule::kNone: return false;
    case MdChineseRule::kPhrase: return md::contains(t, phrase);
    case MdChineseRule::kShenLim: return md::contains(t, U"沈林");
    default: break;
  }
  MdZhconvHook hook = zhconv_hook.load();
  if (!hook) throw AssetError("MulDimIF Language_Chinese checks need zhconv, which this engine calls through hirfast.verify");
  return hook(rule, t);
}

const std::pair<const char*, MdFn> kKeys[] = {
    {"Content_Keywords", md_content_keywords},
    {"Content_Keywords: Must include", md_content_keywords},
    {"Length_Words", md_length_words},
    {"Length_Words: At most", md_length_words},
    {"Length_Words: At least", md_length_words},
    {"Length_Words: Range", md_length_words},
    {"Length_Sentences", md_length_sentences},
    {"Length_Sentences: At least", md_length_sentences},
    {"Length_Sentences: At most", md_length_sentences},
    {"Length_Sentences: Range", md_length_sentences},
    {"Length_Paragraphs", md_length_paragraphs},
    {"Length_Paragraphs: At most", md_length_paragraphs},
    {"Length_Paragraphs: At least", md_length_paragraphs},
    {"Length_Paragraphs: Range", md_length_paragraphs},
    {"Paragraphs_At most", md_length_paragraphs},
    {"Format_Table", md_format_table},
    {"Table_Row limit", md_format_table},
    {"Table_Column limit", md_format_table},
    {"Format_Table: Row limit", md_format_table},
    {"Format_Table: Column limit", md_format_table},
    {"Punctuation_Ending punctuation", md_content_punctuation},
    {"Content_Punctuation: Ending punctuation", md_content_punctuation},
    {"Content_Punctuation", md_content_punctuation},
    {"Language_English", md_language_english},
    {"Language_English: Capitalized", md_language_english},
    {"Language_English: All Uppercase", md_language_english},
    {"Format_Markdown", md_format_markdown},
    {"Markdown_Heading levels", md_format_markdown},
    {"Format_Markdown: Heading levels", md_format_markdown},
    {"Markdown_Block quotes", md_format_markdown},
    {"Json_Object nesting levels", md_format_json},
    {"Format_Json", md_format_json},
    {"Language_Chinese", md_language_chinese},
    {"Language_Chinese: Simplified", md_language_chinese},
    {"Language_Chinese: Traditional", md_language_chinese},
    {"Content_Identifiers", md_content_others},
    {"Content_Length", md_content_others},
    {"Citations_In-text", md_content_others},
    {"Content_Quotes", md_content_others},
    {"Content_Sources", md_content_others},
    {"Content_Mention", md_content_others},
    {"Format_Markdown: Block quotes", md_format_others},
    {"Format_Text", md_format_others},
    {"XML_Number of attributes", md_format_others},
    {"References_Format", md_format_others},
    {"Format_Bullet Points", md_format_others},
    {"Format_XML", md_format_others},
    {"Format_Blurb", md_format_others},
    {"Table_Table", md_format_others},
    {"Sentences_At most", md_length_sentences},
    {"Sentences_At least", md_length_sentences},
    {"Words_At most", md_length_words},
    {"Json_Number of attributes", md_format_json},
    {"Format_Word Count", md_length_words},
    {"Format_Length", md_format_others},
};

}  // namespace

void set_md_zhconv_hook(MdZhconvHook hook) { zhconv_hook.store(hook); }

void register_muldimif_checkers(Registry& r) {
  for (const auto& key : kKeys) {
    MdFn fn = key.second;
    r.add(std::string("muldimif:") + key.first, {"text"}, [fn](CheckerContext& ctx) -> std::unique_ptr<Checker> {
      U32 text = ctx.args->get_str("text");
      ctx.args->finish();
      return std::make_unique<MdChecker>(make_check(fn, std::move(text)));
    });
  }
}

}  // namespace hirfast
