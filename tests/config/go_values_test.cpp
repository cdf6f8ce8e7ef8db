#include "config/go_values.h"

#include <gtest/gtest.h>

using namespace std::chrono_literals;
using mps::config::FormatGoDuration;
using mps::config::ParseGoBool;
using mps::config::ParseGoDuration;

TEST(GoBool, AcceptsExactlyWhatStrconvAccepts) {
  for (auto t : {"1", "t", "T", "TRUE", "true", "True"}) EXPECT_EQ(ParseGoBool(t), true) << t;
  for (auto f : {"0", "f", "F", "FALSE", "false", "False"}) EXPECT_EQ(ParseGoBool(f), false) << f;
  for (auto bad : {"", "yes", "tRUE", "on", " true", "2"}) EXPECT_FALSE(ParseGoBool(bad)) << bad;
}

TEST(GoDuration, ParsesUnitsGroupsFractionsAndSign) {
  EXPECT_EQ(ParseGoDuration("15m"), 15min);
  EXPECT_EQ(ParseGoDuration("90s"), 90s);
  EXPECT_EQ(ParseGoDuration("1h30m"), 90min);
  EXPECT_EQ(ParseGoDuration("1.5s"), 1500ms);
  EXPECT_EQ(ParseGoDuration("300ms"), 300ms);
  EXPECT_EQ(ParseGoDuration("10us"), 10us);
  EXPECT_EQ(ParseGoDuration("10\xC2\xB5s"), 10us);
  EXPECT_EQ(ParseGoDuration("7ns"), 7ns);
  EXPECT_EQ(ParseGoDuration("-1s"), -1s);
  EXPECT_EQ(ParseGoDuration("+2m"), 2min);
  EXPECT_EQ(ParseGoDuration("0"), 0ns);
  EXPECT_EQ(ParseGoDuration("7.5s"), 7500ms);
}

TEST(GoDuration, RejectsWhatGoRejects) {
  for (auto bad : {"", "5", "1d", "s", "1.s5", "abc", "1h 30m", "-", "1e3s", "1.", "99999999999h"})
    EXPECT_FALSE(ParseGoDuration(bad)) << bad;
}

TEST(GoDuration, FormatsLikeGo) {
  EXPECT_EQ(FormatGoDuration(0ns), "0s");
  EXPECT_EQ(FormatGoDuration(15min), "15m0s");
  EXPECT_EQ(FormatGoDuration(90min), "1h30m0s");
  EXPECT_EQ(FormatGoDuration(1500ms), "1.5s");
  EXPECT_EQ(FormatGoDuration(-1s), "-1s");
  EXPECT_EQ(FormatGoDuration(300ms), "300ms");
  EXPECT_EQ(FormatGoDuration(5ns), "5ns");
  for (std::chrono::nanoseconds d :
       {1ns, std::chrono::nanoseconds(1500ms), std::chrono::nanoseconds(15min),
        std::chrono::nanoseconds(90min), 2h + 1ns})
    EXPECT_EQ(ParseGoDuration(FormatGoDuration(d)), d);
}
