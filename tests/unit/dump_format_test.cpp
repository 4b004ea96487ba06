#include "pipelines/dump_format.hpp"

#include <gtest/gtest.h>

namespace agent {
namespace {

TEST(DumpFormat, PatternsThatCouldBeReadAsOptionsOrBreakALineAreRefused) {
  EXPECT_TRUE(check_dump_pattern("--table", "public.marks").ok());
  EXPECT_TRUE(check_dump_pattern("--table", "x --file=/tmp/evil").ok()) << "one argv element: inert";
  EXPECT_TRUE(check_dump_pattern("--table", "\"Odd \"\"Schema\"\"\".\"-dash\"").ok());
  for (const std::string& bad :
       {std::string(""), std::string("-x"), std::string("--file=/tmp/evil"), std::string("a\nb"),
        std::string("a\rb"), std::string("a\tb"), std::string("a\x7f")}) {
    const auto s = check_dump_pattern("--table", bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().kind, ErrorKind::usage);
    EXPECT_NE(s.error().message.find("--table"), std::string::npos) << s.error().message;
    EXPECT_EQ(s.error().message.find('\n'), std::string::npos) << "shown escaped: " << s.error().message;
    EXPECT_FALSE(s.error().hint.empty());
  }
}

// The manifest, written after the dump is published, records the patterns as JSON text.
TEST(DumpFormat, PatternsThatAreNotUtf8AreRefused) {
  EXPECT_TRUE(check_dump_pattern("--exclude-table", "caf\xc3\xa9.men\xc3\xbc").ok());
  EXPECT_TRUE(check_dump_pattern("--table", "\xf0\x9f\x98\x80").ok());
  for (const std::string& bad :
       {std::string("\xff"), std::string("caf\xe9"), std::string("\xc0\xaf"), std::string("\xed\xa0\x80"),
        std::string("\xf4\x90\x80\x80"), std::string("a\xc3")}) {
    const auto s = check_dump_pattern("--exclude-table", bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.error().kind, ErrorKind::usage);
    EXPECT_NE(s.error().message.find("not UTF-8"), std::string::npos) << s.error().message;
    EXPECT_FALSE(is_utf8(bad));
  }
  EXPECT_TRUE(is_utf8(""));
  EXPECT_TRUE(is_utf8("\xe2\x82\xac \xf4\x8f\xbf\xbf"));  // U+20AC, U+10FFFF
}

TEST(DumpFormat, CombinationsAreCheckedBeforeAnythingRuns) {
  DumpShape shape;
  EXPECT_TRUE(check_dump_shape(shape, false).ok());
  shape.selection.exclude_schemas = {"-evil"};
  EXPECT_FALSE(check_dump_shape(shape, false).ok());
  shape.selection.exclude_schemas.clear();
  shape.selection.data_only = shape.selection.schema_only = true;
  EXPECT_FALSE(check_dump_shape(shape, false).ok());
  shape.selection.schema_only = false;
  shape.jobs = 2;
  EXPECT_FALSE(check_dump_shape(shape, false).ok()) << "--jobs needs the directory format";
  shape.format = DumpFormat::directory;
  EXPECT_TRUE(check_dump_shape(shape, false).ok());
  EXPECT_FALSE(check_dump_shape(shape, true).ok()) << "a directory cannot go to standard output";
  shape.jobs = 33;
  EXPECT_FALSE(check_dump_shape(shape, false).ok());
  shape.jobs = 1;
  shape.format = DumpFormat::custom;
  EXPECT_TRUE(check_dump_shape(shape, true).ok());
  shape.globals = true;
  EXPECT_FALSE(check_dump_shape(shape, true).ok()) << "roles cannot be prepended to an archive";
  shape.format = DumpFormat::plain;
  EXPECT_TRUE(check_dump_shape(shape, true).ok());
}

TEST(DumpFormat, CompressionFitsTheFormat) {
  auto c = parse_dump_compression("auto", DumpFormat::plain);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, DumpCompression::Kind::none);
  c = parse_dump_compression("auto", DumpFormat::custom);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, DumpCompression::Kind::pg_default);
  c = parse_dump_compression("zstd", DumpFormat::plain);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->describe(), "zstd:3");
  c = parse_dump_compression("zstd:19", DumpFormat::plain);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->level, 19);
  c = parse_dump_compression("gzip:0", DumpFormat::directory);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->describe(), "gzip:0");
  for (const auto& [text, format] :
       {std::pair{"zstd:0", DumpFormat::plain}, std::pair{"zstd:20", DumpFormat::plain},
        std::pair{"zstd:", DumpFormat::plain}, std::pair{"zstd:3x", DumpFormat::plain},
        std::pair{"zstd", DumpFormat::custom}, std::pair{"gzip", DumpFormat::plain},
        std::pair{"gzip:10", DumpFormat::custom}, std::pair{"lz4", DumpFormat::plain},
        std::pair{"", DumpFormat::plain}}) {
    const auto parsed = parse_dump_compression(text, format);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.error().kind, ErrorKind::usage);
  }
}

TEST(DumpFormat, TheManifestRecordsTheShape) {
  DumpShape shape;
  shape.selection.tables = {"public.marks"};
  shape.selection.data_only = true;
  shape.compression.kind = DumpCompression::Kind::zstd;
  shape.compression.level = 5;
  const auto json = dump_shape_json(shape);
  EXPECT_EQ(json["format"], "plain");
  EXPECT_EQ(json["compression"], "zstd:5");
  EXPECT_EQ(json["selection"]["tables"], nlohmann::json::array({"public.marks"}));
  EXPECT_EQ(json["selection"]["data_only"], true);
  EXPECT_TRUE(shape.selection.into_existing_database());
}

}  // namespace
}  // namespace agent
