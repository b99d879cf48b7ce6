#include "io/pairs.hpp"

#include "io/image_io.hpp"

#include <filesystem>
#include <map>
#include <set>

namespace sinsr {
namespace io {

namespace fs = std::filesystem;

namespace {

// stem -> file; a stem two files share is a problem, not a silent choice.
std::map<std::string, std::string> by_stem(const std::string& dir, const std::string& suffix,
                                           std::vector<std::string>& problems) {
  std::map<std::string, std::string> out;
  std::set<std::string> shared;
  std::error_code ec;
  const std::vector<std::string> files =
      fs::is_regular_file(dir, ec) ? std::vector<std::string>{dir} : list_images(dir);
  for (const auto& f : files) {
    std::string stem = fs::path(f).stem().string();
    if (!suffix.empty() && stem.size() > suffix.size() &&
        stem.compare(stem.size() - suffix.size(), suffix.size(), suffix) == 0)
      stem.resize(stem.size() - suffix.size());
    auto [it, fresh] = out.emplace(stem, f);
    if (!fresh) {
      problems.push_back(f + ": same name as " + it->second + "; neither is paired");
      shared.insert(stem);
    }
  }
  for (const auto& stem : shared) out.erase(stem);
  return out;
}

}  // namespace

Pairing pair_by_stem(const std::string& first_dir, const std::string& second_dir, const std::string& first_what,
                     const std::string& second_what, const std::string& first_suffix) {
  Pairing p;
  std::error_code ec;
  if (fs::is_regular_file(first_dir, ec) && fs::is_regular_file(second_dir, ec)) {  // two files: whatever their names
    p.pairs.push_back({fs::path(first_dir).stem().string(), first_dir, second_dir});
    p.first_count = p.second_count = 1;
    return p;
  }
  const auto first = by_stem(first_dir, first_suffix, p.problems);
  const auto second = by_stem(second_dir, "", p.problems);
  p.first_count = first.size();
  p.second_count = second.size();
  for (const auto& [stem, f] : first)
    if (!second.count(stem)) p.problems.push_back(f + ": no " + second_what + " named " + stem + ".* in " + second_dir);
  for (const auto& [stem, f] : second) {
    auto it = first.find(stem);
    if (it == first.end())
      p.problems.push_back(f + ": no " + first_what + " for it in " + first_dir);
    else
      p.pairs.push_back({stem, it->second, f});
  }
  return p;
}

Pairing list_by_stem(const std::string& dir, const std::string& suffix) {
  Pairing p;
  for (const auto& [stem, f] : by_stem(dir, suffix, p.problems)) p.pairs.push_back({stem, f, ""});
  p.first_count = p.pairs.size();
  return p;
}

}  // namespace io
}  // namespace sinsr
