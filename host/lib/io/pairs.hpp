// Images of two folders paired by file name (stem), never by position: sorted lists paired by
// index silently mismatch as soon as one file is missing. `sinsr-host eval` and the trainer's
// validation pair their images here. Either side may be one image file instead of a folder (a
// folder of one); two files are paired whatever their names.
#pragma once

#include <string>
#include <vector>

namespace sinsr {
namespace io {

struct ImagePair {
  std::string stem;    // the shared name, without extension (and without the first folder's suffix)
  std::string first;   // the image in the first folder
  std::string second;  // the image in the second folder
};

struct Pairing {
  std::vector<ImagePair> pairs;  // sorted by stem
  // By file name: two images of one folder with one stem (a.png, a.jpg: neither is paired), and
  // images without a partner in the other folder.
  std::vector<std::string> problems;
  size_t first_count = 0, second_count = 0;  // usable images (unique stems) in each folder
};

// first_what / second_what name each folder's images in the problems ("prediction", "ground
// truth"). `first_suffix` is stripped from the first folder's stems (baby_x4.png pairs baby.png).
// SINSR_ERR_IO when a folder cannot be read.
Pairing pair_by_stem(const std::string& first_dir, const std::string& second_dir, const std::string& first_what,
                     const std::string& second_what, const std::string& first_suffix = "");

// One folder alone, for no-reference metrics: every image by stem (`second` empty), with the same
// problems for two images of one stem; first_count is the number listed.
Pairing list_by_stem(const std::string& dir, const std::string& suffix = "");

}  // namespace io
}  // namespace sinsr
