#include "jobs/annotations.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

std::string unquoted(std::string_view quoted) {
  auto value = unquote_go_string(quoted);
  EXPECT_TRUE(value.ok()) << quoted << ": " << value.error().describe();
  return value.ok() ? *value : std::string("<error>");
}

TEST(UnquoteGoString, PlainAndEmpty) {
  EXPECT_EQ(unquoted(R"("")"), "");
  EXPECT_EQ(unquoted(R"("Mon Nov 23 10:00:00 UTC 2026")"), "Mon Nov 23 10:00:00 UTC 2026");
}

TEST(UnquoteGoString, EverySingleCharacterEscape) {
  EXPECT_EQ(unquoted(R"("\a\b\f\n\r\t\v")"), "\a\b\f\n\r\t\v");
  EXPECT_EQ(unquoted(R"("say \"hi\" \\ bye")"), "say \"hi\" \\ bye");
}

TEST(UnquoteGoString, ByteEscapes) {
  EXPECT_EQ(unquoted(R"("\x41\x7a\xff")"), "Az\xff");
  EXPECT_EQ(unquoted(R"("\101\000\377")"), std::string("A\0\xff", 3));
}

TEST(UnquoteGoString, UnicodeEscapesBecomeUtf8) {
  EXPECT_EQ(unquoted(R"("\u00e9")"), "\xc3\xa9");              // é, two bytes
  EXPECT_EQ(unquoted(R"("\u20AC")"), "\xe2\x82\xac");          // €, three bytes
  EXPECT_EQ(unquoted(R"("\U0001F600")"), "\xf0\x9f\x98\x80");  // 😀, four bytes
  EXPECT_EQ(unquoted(R"("\u0041")"), "A");
}

TEST(UnquoteGoString, RawUtf8PassesThrough) {
  EXPECT_EQ(unquoted("\"caf\xc3\xa9\""), "caf\xc3\xa9");
}

TEST(UnquoteGoString, Errors) {
  for (std::string_view bad : {R"(abc)", R"("abc)", R"("abc\")", R"("\q")", R"("\'")", R"("\x4")",
                               R"("\xzz")", R"("\u12")", R"("\U0011FFFF")", R"("\uD800")", R"("\400")",
                               R"("\12")", R"("a"b)", R"("a" )", "\"a\nb\"", R"()", R"(")"}) {
    auto value = unquote_go_string(bad);
    ASSERT_FALSE(value.ok()) << bad;
    EXPECT_EQ(value.error().kind, ErrorKind::usage) << bad;
    EXPECT_FALSE(value.error().message.empty());
    EXPECT_TRUE(std::islower(static_cast<unsigned char>(value.error().message[0]))) << value.error().message;
  }
}

TEST(ParseAnnotations, EmptyText) {
  const auto file = parse_annotations("");
  EXPECT_TRUE(file.values.empty());
  EXPECT_TRUE(file.problems.empty());
}

TEST(ParseAnnotations, KubeletStyleFile) {
  const auto file = parse_annotations(
      "kubectl.kubernetes.io/default-container=\"database\"\n"
      "postgres-operator.crunchydata.com/pgbackrest-backup=\"Mon Nov 23 10:00:00 UTC 2026\"\n"
      "note=\"line one\\nline two\\ttabbed\"\n"
      "\n"
      "my_key.v-1=\"a=b \\\"quoted\\\" c=d\"\n");
  EXPECT_TRUE(file.problems.empty());
  ASSERT_EQ(file.values.size(), 4u);
  EXPECT_EQ(file.values.at("kubectl.kubernetes.io/default-container"), "database");
  EXPECT_EQ(file.values.at("postgres-operator.crunchydata.com/pgbackrest-backup"),
            "Mon Nov 23 10:00:00 UTC 2026");
  EXPECT_EQ(file.values.at("note"), "line one\nline two\ttabbed");
  EXPECT_EQ(file.values.at("my_key.v-1"), "a=b \"quoted\" c=d");
}

TEST(ParseAnnotations, LastLineWithoutNewlineAndCrlf) {
  const auto file = parse_annotations("a=\"1\"\r\nb=\"2\"");
  EXPECT_TRUE(file.problems.empty());
  EXPECT_EQ(file.values.at("a"), "1");
  EXPECT_EQ(file.values.at("b"), "2");
}

TEST(ParseAnnotations, GarbageLinesAreReportedAndSkipped) {
  const auto file = parse_annotations(
      "good=\"1\"\n"
      "no equals sign here\n"
      "unquoted=value\n"
      "bad-escape=\"\\q\"\n"
      "trailing=\"x\" junk\n"
      "=\"no key\"\n"
      "spaced key=\"x\"\n"
      "open=\"never closed\n"
      "also.good=\"2\"\n"
      "good=\"again\"\n");
  EXPECT_EQ(file.values.size(), 2u);
  EXPECT_EQ(file.values.at("good"), "1");
  EXPECT_EQ(file.values.at("also.good"), "2");
  ASSERT_EQ(file.problems.size(), 8u);
  EXPECT_EQ(file.problems[0].rfind("line 2: ", 0), 0u) << file.problems[0];
  EXPECT_EQ(file.problems[1].rfind("line 3: unquoted: ", 0), 0u) << file.problems[1];
  EXPECT_NE(file.problems[2].find("invalid escape"), std::string::npos) << file.problems[2];
  EXPECT_EQ(file.problems[7].rfind("line 10: good: duplicate", 0), 0u) << file.problems[7];
}

TEST(ParseAnnotations, BinaryGarbageIsSkippedAndNeverQuoted) {
  using namespace std::string_literals;
  std::string garbage =
      "\x7f"
      "ELF\x02\x01\x01";
  garbage += "\0\0\0\xff\xfe\n"s;
  garbage += "nul\0key=\"x\"\n"s;      // a NUL byte in the key
  garbage += "latin=\"caf\xe9\"\n";    // invalid UTF-8: kept as bytes
  garbage += "nul.value=\"a\0b\"\n"s;  // a NUL byte in the value
  garbage += "postgres-operator.crunchydata.com/pgbackrest-backup=\"v1\"\n";
  const auto file = parse_annotations(garbage);
  EXPECT_EQ(file.values.at("postgres-operator.crunchydata.com/pgbackrest-backup"), "v1");
  EXPECT_EQ(file.values.at("latin"), "caf\xe9");
  EXPECT_EQ(file.values.at("nul.value"), "a\0b"s);
  ASSERT_EQ(file.skipped, 2u);
  ASSERT_EQ(file.problems.size(), 2u);
  for (const auto& problem : file.problems) {
    EXPECT_EQ(problem.find('\0'), std::string::npos) << "a problem must not carry the line's bytes";
    EXPECT_EQ(problem.find("ELF"), std::string::npos) << problem;
  }
}

TEST(ParseAnnotations, ManyBadLinesAreCountedNotAllKept) {
  std::string text;
  for (int i = 0; i < 10000; ++i) text += "garbage\n";
  text += "k=\"v\"\n";
  const auto file = parse_annotations(text);
  EXPECT_EQ(file.skipped, 10000u);
  EXPECT_EQ(file.problems.size(), AnnotationFile::kMaxProblems);
  EXPECT_EQ(file.values.at("k"), "v");
}

TEST(ParseAnnotations, AVeryLongKeyIsCutShortInProblems) {
  const std::string key(100000, 'k');
  const auto file = parse_annotations(key + "=unquoted\n");
  ASSERT_EQ(file.problems.size(), 1u);
  EXPECT_LT(file.problems[0].size(), 500u);
  EXPECT_NE(file.problems[0].find("..."), std::string::npos);
}

}  // namespace
}  // namespace agent
