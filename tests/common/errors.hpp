// Test helpers for errors: the one copy every test uses (tests/twins checks no second appears).
#pragma once

#include <sinsr/sdk.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sinsr_test {

// The message of the sdk::Error that f() throws, its code in *code; "" when f() throws nothing.
// Any other exception fails the test: only the SDK's errors may leave the project's code.
template <class F>
std::string error_of(F&& f, int* code = nullptr) {
  try {
    f();
  } catch (const sinsr::sdk::Error& e) {
    if (code) *code = e.code();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "foreign exception: " << e.what();
  }
  return "";
}

// f() throws an sdk::Error with `code` whose message holds every one of `words`.
template <class F>
void expect_error(F&& f, sinsr_code code, const std::vector<std::string>& words) {
  int got = SINSR_OK;
  const std::string message = error_of(f, &got);
  if (message.empty()) {
    ADD_FAILURE() << "no error; expected one mentioning '" << (words.empty() ? "" : words.front()) << "'";
    return;
  }
  EXPECT_EQ(got, code) << message;
  for (const auto& w : words) EXPECT_NE(message.find(w), std::string::npos) << "'" << w << "' in: " << message;
}

}  // namespace sinsr_test
