// sinsr-host's command line as users of other SR tools type it: realesrgan-ncnn-vulkan's short
// options, global options before a command, one-line usage errors, readable --help, and plain
// progress lines when stderr is a log rather than a terminal.
#include "host_run.hpp"
#include "parity.hpp"

#include "cli/command_words.hpp"
#include "io/image_io.hpp"

#include <ATen/Context.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <vector>

namespace fs = std::filesystem;

namespace {

using sinsr_test::fresh_dir;
using sinsr_test::HostRun;
using sinsr_test::run_host;

const std::string kComponents = SINSR_TEST_PLUGIN_DIR "/test_components.so";
const std::string kX2Model = SINSR_TEST_PLUGIN_DIR "/cli_x2_model.so";
// A cheap pixel-space pipeline (3x3 blur of the nearest upscale): the CLI is under test here.
const std::string kBlur =
    "infer --plugin " + kComponents + " -n local_blur -w none --codec none --sampler single-step ";

size_t line_count(const std::string& text) { return size_t(std::count(text.begin(), text.end(), '\n')); }

bool is_jpeg(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  unsigned char magic[3] = {0, 0, 0};
  in.read(reinterpret_cast<char*>(magic), 3);
  return magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF;
}

at::IntArrayRef::value_type height(const fs::path& p) { return sinsr::io::read_image(p.string()).pixels.size(1); }
at::IntArrayRef::value_type width(const fs::path& p) { return sinsr::io::read_image(p.string()).pixels.size(2); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// What a shell command prints on stdout ("" when it cannot run).
std::string run_shell(const std::string& command) {
  std::string out;
  if (FILE* p = ::popen(command.c_str(), "r")) {
    char buf[65536];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

TEST(Cli, RealesrganShortOptionsOnAFolderAndAFile) {
  fs::path in = fresh_dir("short_in"), out = fresh_dir("short_out", false);
  sinsr::io::write_image((in / "a.png").string(), at::rand({3, 150, 200}));  // two tiles of 128 each way
  sinsr::io::write_image((in / "b.png").string(), at::rand({3, 10, 12}));
  HostRun folder = run_host(kBlur + "-i " + in.string() + " -o " + out.string() + " -s 4 -t 128 -j 1 -f jpg -q");
  ASSERT_EQ(folder.code, 0) << folder.output;
  EXPECT_TRUE(is_jpeg(out / "a.jpg"));
  EXPECT_EQ(height(out / "a.jpg"), 600);
  EXPECT_EQ(width(out / "a.jpg"), 800);
  EXPECT_EQ(width(out / "b.jpg"), 48);
  EXPECT_FALSE(fs::exists(out / "a.png"));

  fs::path file = fresh_dir("short_file") / "sub" / "a_x4.jpg";
  HostRun one =
      run_host(kBlur + "-i " + (in / "a.png").string() + " -o " + file.string() + " -s 4 -t 128 -j 1 -f jpg -q");
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_TRUE(is_jpeg(file));
  EXPECT_EQ(height(file), 600);
  // The long spellings still work and mean the same.
  fs::path longer = file.parent_path() / "a_long.jpg";
  HostRun lng = run_host(kBlur + "--input " + (in / "a.png").string() + " --output " + longer.string() +
                         " --scale 4 --chop-size 128 --threads 1 --format jpg --quiet");
  ASSERT_EQ(lng.code, 0) << lng.output;
  EXPECT_EQ(height(longer), 600);
}

TEST(Cli, FormatWinsOverTheFileExtension) {
  fs::path d = fresh_dir("format");
  sinsr::io::write_image((d / "a.png").string(), at::rand({3, 8, 8}));
  HostRun r = run_host(kBlur + "-i " + (d / "a.png").string() + " -o " + (d / "out.png").string() + " -f jpg");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "-f jpg wins over the extension of " + (d / "out.png").string())) << r.output;
  EXPECT_TRUE(is_jpeg(d / "out.jpg"));
  EXPECT_FALSE(fs::exists(d / "out.png"));
  // The same format under its other name is no conflict: the name stays.
  HostRun same = run_host(kBlur + "-q -i " + (d / "a.png").string() + " -o " + (d / "same.jpeg").string() + " -f jpg");
  ASSERT_EQ(same.code, 0) << same.output;
  EXPECT_TRUE(is_jpeg(d / "same.jpeg"));
  HostRun bad = run_host(kBlur + "-i " + (d / "a.png").string() + " -o " + (d / "x.png").string() + " -f xyz");
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_TRUE(contains(bad.output, "not an image format")) << bad.output;
  HostRun both = run_host(kBlur + "-i " + d.string() + " -o " + (d / "o").string() + " -f jpg --ext png");
  EXPECT_EQ(both.code, 2) << both.output;
}

TEST(Cli, GpuIndex) {
  fs::path d = fresh_dir("gpu");
  sinsr::io::write_image((d / "a.png").string(), at::rand({3, 8, 8}));
  HostRun cpu = run_host(kBlur + "-q -g -1 -i " + (d / "a.png").string() + " -o " + (d / "cpu.png").string());
  EXPECT_EQ(cpu.code, 0) << cpu.output;
  HostRun both =
      run_host(kBlur + "-q -g 0 --device cpu -i " + (d / "a.png").string() + " -o " + (d / "x.png").string());
  EXPECT_EQ(both.code, 2) << both.output;
  if (at::hasCUDA()) GTEST_SKIP() << "CUDA present: -g 0 is a real GPU here";
  HostRun gpu = run_host(kBlur + "-q -g 0 -i " + (d / "a.png").string() + " -o " + (d / "gpu.png").string());
  EXPECT_EQ(gpu.code, 1) << gpu.output;
  EXPECT_TRUE(contains(gpu.output, "-g 0: no CUDA")) << gpu.output;
  EXPECT_EQ(line_count(gpu.output), 1u) << gpu.output;
  EXPECT_FALSE(fs::exists(d / "gpu.png"));
}

TEST(Cli, ScaleAgainstTheModelsFixedFactor) {
  fs::path d = fresh_dir("scale");
  sinsr::io::write_image((d / "a.png").string(), at::rand({3, 8, 12}));
  const std::string model = "infer -q --plugin " + kComponents + " --plugin " + kX2Model + " -n cli_x2_model -i " +
                            (d / "a.png").string() + " ";
  HostRun plain = run_host(model + "-o " + (d / "x2.png").string());  // the model's own factor
  ASSERT_EQ(plain.code, 0) << plain.output;
  EXPECT_EQ(height(d / "x2.png"), 16);
  HostRun asked = run_host(model + "-s 2 -o " + (d / "s2.png").string());
  ASSERT_EQ(asked.code, 0) << asked.output;
  EXPECT_EQ(width(d / "s2.png"), 24);
  HostRun wrong = run_host(model + "-s 4 -o " + (d / "s4.png").string());
  EXPECT_EQ(wrong.code, 2) << wrong.output;
  EXPECT_TRUE(contains(wrong.output, "model 'cli_x2_model' upscales x2 only")) << wrong.output;
  EXPECT_FALSE(fs::exists(d / "s4.png"));

  // A latent pipeline without a declared factor: vq_f4 fixes x4, found on one small tile.
  const std::string parity = sinsr_test::parity_dir();
  if (!fs::exists(parity + "/unet_tiny.pth")) GTEST_SKIP() << "no parity weights in " << parity;
  HostRun latent =
      run_host("infer -q -n unet_swin --backbone-config " + parity + "/tiny-unet.yaml -w " + parity +
               "/unet_tiny.pth --codec vq_f4 --codec-config " + parity + "/tiny-vq.yaml --codec-weights " + parity +
               "/vq_tiny.pth -s 2 -i " + (d / "a.png").string() + " -o " + (d / "vq.png").string());
  EXPECT_EQ(latent.code, 2) << latent.output;
  EXPECT_TRUE(contains(latent.output, "cannot upscale x2")) << latent.output;
  EXPECT_TRUE(contains(latent.output, "codec 'vq_f4' at 1/4")) << latent.output;
}

// bench on a tiny UNet: its header names the BLAS library (numbers from two machines compare only
// with it), each row has a positive time per column, and an unknown --only is a usage error.
TEST(Cli, BenchPrintsItsRowsAndTheBlasLibrary) {
  const std::string tiny = sinsr_test::parity_dir() + "/tiny-unet.yaml";
  if (!fs::exists(tiny)) GTEST_SKIP() << "no " << tiny;
  HostRun r = run_host("bench --only unet --config " + tiny + " --latent 16 --repeats 1 --threads 1 --no-cuda");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "\nblas: ")) << r.output;
  const std::string what = "unet_swin forward, latent 16x16";
  const size_t row = r.output.find(what);
  ASSERT_NE(row, std::string::npos) << r.output;
  double one = 0, many = 0;
  std::istringstream line(r.output.substr(row + what.size()));
  line >> one >> many;
  EXPECT_GT(one, 0.0) << r.output;
  EXPECT_GT(many, 0.0) << r.output;

  HostRun bad = run_host("bench --only nonsense --config " + tiny);
  EXPECT_EQ(bad.code, 2) << bad.output;
  EXPECT_TRUE(contains(bad.output, "--only takes unet, vq, upscale, distill or memory")) << bad.output;
}

// Weights that alias the memory-mapped checkpoints and weights copied out of them
// (SINSR_NO_MMAP=1) make the same image, byte for byte.
TEST(Cli, MappedAndCopiedWeightsMakeTheSameImage) {
  const std::string parity = sinsr_test::parity_dir();
  if (!fs::exists(parity + "/unet_tiny.pth")) GTEST_SKIP() << "no parity weights in " << parity;
  fs::path d = fresh_dir("mmap");
  sinsr::io::write_image((d / "a.png").string(), at::rand({3, 16, 16}));
  const std::string args = "infer -q -j 1 -n unet_swin --backbone-config " + parity + "/tiny-unet.yaml -w " + parity +
                           "/unet_tiny.pth --codec vq_f4 --codec-config " + parity + "/tiny-vq.yaml --codec-weights " +
                           parity + "/vq_tiny.pth -i " + (d / "a.png").string() + " -o ";
  HostRun mapped = run_host(args + (d / "mapped.png").string());
  ASSERT_EQ(mapped.code, 0) << mapped.output;
  ::setenv("SINSR_NO_MMAP", "1", 1);
  HostRun copied = run_host(args + (d / "copied.png").string());
  ::unsetenv("SINSR_NO_MMAP");
  ASSERT_EQ(copied.code, 0) << copied.output;
  EXPECT_EQ(sinsr_test::read_bytes(d / "mapped.png"), sinsr_test::read_bytes(d / "copied.png"));
}

TEST(Cli, GlobalOptionsBeforeTheCommand) {
  HostRun list = run_host("--plugin " + kComponents + " plugins list");
  ASSERT_EQ(list.code, 0) << list.output;
  EXPECT_TRUE(contains(list.output, "local_blur")) << list.output;
  HostRun eq = run_host("--plugin=" + kComponents + " plugins list");
  ASSERT_EQ(eq.code, 0) << eq.output;
  EXPECT_TRUE(contains(eq.output, "local_blur")) << eq.output;

  fs::path in = fresh_dir("global_in"), out = fresh_dir("global_out");
  sinsr::io::write_image((in / "a.png").string(), at::rand({3, 16, 16}));
  HostRun threads = run_host("-j 1 degrade --in " + in.string() + " --out " + out.string() + " --mode bicubic -q");
  EXPECT_EQ(threads.code, 0) << threads.output;
  EXPECT_TRUE(fs::exists(out / "a.png"));

  // Global options, then infer options: an infer line.
  HostRun infer = run_host("--plugin " + kComponents + " -j 1 -n local_blur -w none --codec none -q -i " +
                           (in / "a.png").string() + " -o " + (out / "sr.png").string());
  EXPECT_EQ(infer.code, 0) << infer.output;
  EXPECT_EQ(height(out / "sr.png"), 64);

  HostRun refused = run_host("--plugin " + kComponents + " eval --pred " + in.string() + " --gt " + in.string());
  EXPECT_EQ(refused.code, 2) << refused.output;
  EXPECT_TRUE(contains(refused.output, "eval: takes no --plugin")) << refused.output;
  // An infer line that also names a command is ambiguous.
  HostRun ambiguous = run_host("-q plugins list");
  EXPECT_EQ(ambiguous.code, 2) << ambiguous.output;
  EXPECT_TRUE(contains(ambiguous.output, "write the command first")) << ambiguous.output;
  EXPECT_EQ(line_count(ambiguous.output), 1u) << ambiguous.output;
  // The rule is written down.
  HostRun usage = run_host("--help");
  EXPECT_TRUE(contains(usage.output, "--plugin FILE (repeatable) and --threads N (or -j N) may precede"))
      << usage.output;
}

TEST(Cli, UsageErrorsAreOneLine) {
  HostRun missing = run_host("infer -o somewhere.png");
  EXPECT_EQ(missing.code, 2);
  EXPECT_EQ(line_count(missing.output), 1u) << missing.output;
  EXPECT_TRUE(contains(missing.output, "'--input'")) << missing.output;
  EXPECT_TRUE(contains(missing.output, "sinsr-host infer --help")) << missing.output;
  for (const std::string& line :
       {"degrade --out x --seed 1", "train --out x", "export --out x", "eval --pred x --metrics psnr",
        "infer -i a.png -o b.png stray", "frobnicate", "infer -i a.png -o b.png --bits 3"}) {
    HostRun r = run_host(line);
    EXPECT_EQ(r.code, 2) << line << "\n" << r.output;
    EXPECT_EQ(line_count(r.output), 1u) << line << "\n" << r.output;
  }
}

// --version names the build's image formats (netpbm only without OpenImageIO), the default first.
TEST(Cli, VersionNamesTheImageFormats) {
  HostRun v = run_host("--version");
  EXPECT_EQ(v.code, 0) << v.output;
  EXPECT_TRUE(contains(v.output, "(plugin ABI ")) << v.output;
  EXPECT_TRUE(contains(v.output, std::string("image formats: ") + sinsr::io::formats() + " (written")) << v.output;
}

// The thread pools wait passively unless the user's environment says otherwise: libgomp reads
// it when it loads, so the launcher sets it before loading the program. OMP_DISPLAY_ENV=verbose
// shows what libgomp made of it: no spinning at all, or its default 300000 rounds.
TEST(Cli, ThreadPoolsWaitPassivelyUnlessTheEnvironmentSays) {
  ::setenv("OMP_DISPLAY_ENV", "verbose", 1);
  ::unsetenv("OMP_WAIT_POLICY");
  HostRun fresh = run_host("--version");
  ::setenv("OMP_WAIT_POLICY", "active", 1);
  HostRun told = run_host("--version");
  ::unsetenv("OMP_WAIT_POLICY");
  ::unsetenv("OMP_DISPLAY_ENV");
  EXPECT_EQ(fresh.code, 0) << fresh.output;
  EXPECT_TRUE(contains(fresh.output, "GOMP_SPINCOUNT = '0'")) << fresh.output;
  EXPECT_TRUE(contains(told.output, "OMP_WAIT_POLICY = 'ACTIVE'")) << told.output;
  EXPECT_FALSE(contains(told.output, "GOMP_SPINCOUNT = '0'")) << told.output;
}

// The loader's log of one sinsr-host run (LD_DEBUG=what), all of it.
std::string loader_log(const std::string& what, const std::string& args) {
  const fs::path dir = fresh_dir("ld_" + what);
  ::setenv("LD_DEBUG", what.c_str(), 1);
  ::setenv("LD_DEBUG_OUTPUT", (dir / "log").c_str(), 1);
  HostRun r = run_host(args);
  ::unsetenv("LD_DEBUG");
  ::unsetenv("LD_DEBUG_OUTPUT");
  EXPECT_EQ(r.code, 0) << r.output;
  std::string all;
  for (const auto& e : fs::directory_iterator(dir)) all += sinsr_test::read_bytes(e.path());
  return all;
}

// The line of a loader log that says who loaded LibTorch ("" if none does).
std::string who_loaded_torch(const std::string& log) {
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);)
    if (contains(line, "file=") && contains(line, "libtorch_cpu.so") &&
        (contains(line, "needed by") || contains(line, "dynamically loaded by")))
      return line.substr(line.find(';') + 1);
  return "";
}

// The build writes the order sinsr-host loads the program's libraries in: each after the
// libraries it needs. The launcher follows it (the loader's log names the launcher as the one
// that loaded LibTorch) unless SINSR_LOAD_ORDER=0, the program runs the same either way, and a
// user's LD_LIBRARY_PATH still chooses the files.
TEST(Cli, LibrariesLoadDependenciesFirst) {
  const std::string file = SINSR_LOAD_ORDER_FILE;
  std::ifstream list(file);
  if (!list) GTEST_SKIP() << "the build wrote no " << file;
  std::vector<std::string> order;  // sonames, as DT_NEEDED gives them
  for (std::string line; std::getline(list, line);)
    if (!line.empty()) order.push_back(line);
  ASSERT_FALSE(order.empty());
  std::map<std::string, size_t> place;
  for (size_t k = 0; k < order.size(); ++k) place[order[k]] = k;
  ASSERT_TRUE(std::any_of(order.begin(), order.end(), [](const std::string& n) { return contains(n, "libtorch_cpu"); }))
      << "LibTorch is not among the program's libraries";

  // Where the loader finds each (ldd), then what each needs (readelf).
  const std::string program = file.substr(0, file.size() - std::string(".load-order").size());
  std::map<std::string, std::string> soname_at;
  std::map<std::string, std::string> path_of;
  std::istringstream ldd(run_shell("ldd '" + program + "' 2>/dev/null"));
  for (std::string line; std::getline(ldd, line);) {
    std::istringstream words(line);
    std::string name, arrow, where;
    if (words >> name >> arrow >> where && arrow == "=>" && place.count(name)) {
      soname_at[where] = name;
      path_of[name] = where;
    }
  }
  ASSERT_EQ(path_of.size(), order.size()) << "ldd finds other libraries than the list names";
  std::string files;
  for (const auto& [name, where] : path_of) files += " '" + where + "'";
  const std::string dynamic = run_shell("readelf -d" + files + " 2>/dev/null");
  if (dynamic.empty()) GTEST_SKIP() << "no readelf";
  size_t checked = 0, current = 0;
  std::istringstream lines(dynamic);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("File: ", 0) == 0) {
      current = place.at(soname_at.at(line.substr(6)));
    } else if (const size_t open = line.find("(NEEDED)"); open != std::string::npos) {
      const size_t a = line.find('[', open), b = line.find(']', a);
      const auto dep = place.find(line.substr(a + 1, b - a - 1));
      if (dep == place.end()) continue;  // the C and C++ runtimes: loaded before the list
      EXPECT_LT(dep->second, current) << order[current] << " is listed before " << dep->first << ", which it needs";
      ++checked;
    }
  }
  EXPECT_GT(checked, order.size() / 2);

  const std::string ordered = loader_log("files", "--version");
  ::setenv("SINSR_LOAD_ORDER", "0", 1);
  const std::string at_once = loader_log("files", "--version");
  ::unsetenv("SINSR_LOAD_ORDER");
  EXPECT_TRUE(contains(who_loaded_torch(ordered), "dynamically loaded by")) << who_loaded_torch(ordered);
  EXPECT_TRUE(contains(who_loaded_torch(at_once), "needed by")) << who_loaded_torch(at_once);
  EXPECT_EQ(run_host("--version").output, (::setenv("SINSR_LOAD_ORDER", "0", 1), run_host("--version").output));
  ::unsetenv("SINSR_LOAD_ORDER");

  // A copy of the first listed library in a folder on LD_LIBRARY_PATH is the one that runs.
  const fs::path mine = fresh_dir("ld_path") / order[0];
  fs::copy_file(path_of.at(order[0]), mine);
  ::setenv("LD_LIBRARY_PATH", mine.parent_path().c_str(), 1);
  const std::string libs = loader_log("libs", "--version");
  ::unsetenv("LD_LIBRARY_PATH");
  EXPECT_TRUE(contains(libs, "calling init: " + mine.string())) << libs.substr(0, 4000);
}

TEST(Cli, HelpShowsReadableDefaultsAndNoTestHooks) {
  HostRun train = run_host("train --help");
  ASSERT_EQ(train.code, 0);
  EXPECT_TRUE(contains(train.output, "(=5e-05)")) << train.output;
  EXPECT_FALSE(contains(train.output, "00000000")) << train.output;
  EXPECT_FALSE(contains(train.output, "crash-at")) << train.output;
  EXPECT_EQ(run_host("train --crash-at 3 --help").code, 0);  // hidden, still accepted
  HostRun infer = run_host("infer --help");
  ASSERT_EQ(infer.code, 0);
  for (const char* option : {"-s [ --scale ]", "-t [ --chop-size ]", "-g [ --gpu ]", "-j [ --threads ]",
                             "-f [ --format ]", "-n [ --backbone ]", "docs/cli.md"})
    EXPECT_TRUE(contains(infer.output, option)) << option << "\n" << infer.output;
}

TEST(Cli, ProgressLinesWithoutATerminal) {
  fs::path in = fresh_dir("progress_in"), out = fresh_dir("progress_out");
  sinsr::io::write_image((in / "a.png").string(), at::rand({3, 40, 40}));
  sinsr::io::write_image((in / "b.png").string(), at::rand({3, 12, 12}));
  // stderr goes to a file here: one plain line per image, no tile counter, no carriage returns.
  HostRun r = run_host(kBlur + "-t 16 --pad-multiple 4 -i " + in.string() + " -o " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "[1/2] a.png  (")) << r.output;
  EXPECT_TRUE(contains(r.output, "[2/2] b.png  (")) << r.output;
  EXPECT_TRUE(contains(r.output, " s)\n")) << r.output;
  EXPECT_FALSE(contains(r.output, "tiles")) << r.output;
  EXPECT_FALSE(contains(r.output, "\r")) << r.output;
  EXPECT_LT(r.output.find("[1/2]"), r.output.find("wrote 2 image(s)")) << r.output;
  HostRun quiet = run_host(kBlur + "-q -i " + in.string() + " -o " + out.string());
  EXPECT_EQ(quiet.output, "") << quiet.output;
}

TEST(Cli, ConfigNamesAnInstalledConfig) {
  fs::path in = fresh_dir("config_in"), out = fresh_dir("config_out");
  sinsr::io::write_image((in / "a.png").string(), at::rand({3, 16, 16}));
  HostRun named =
      run_host("degrade -q --mode bicubic --config sinsr_x4 --in " + in.string() + " --out " + out.string());
  EXPECT_EQ(named.code, 0) << named.output;
  HostRun unknown =
      run_host("degrade --mode bicubic --config no_such_config --in " + in.string() + " --out " + out.string());
  EXPECT_EQ(unknown.code, 1) << unknown.output;
  EXPECT_TRUE(contains(unknown.output, "no_such_config: no such file, nor an installed config (sinsr_x4.yaml"))
      << unknown.output;
}

// The shipped model (when built with its weights) under the short options, on Set5.
TEST(Cli, ShippedModelWithShortOptions) {
  fs::path data = fs::path(sinsr_test::data_dir()) / "set5" / "lr_x4";
  if (!fs::exists(fs::path(SINSR_PLUGIN_DIR) / "student.pth") || !fs::exists(data))
    GTEST_SKIP() << "no shipped student model or no Set5";
  fs::path out = fresh_dir("student_out", false);
  HostRun r = run_host("infer -n student -s 4 -t 128 -j 1 -f jpg -i " + data.string() + " -o " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "[5/5] woman.png  (")) << r.output;
  EXPECT_EQ(height(out / "baby.jpg"), 4 * height(data / "baby.png"));
  HostRun wrong =
      run_host("infer -n student -s 2 -i " + (data / "baby.png").string() + " -o " + (out / "x.png").string());
  EXPECT_EQ(wrong.code, 2) << wrong.output;
  EXPECT_TRUE(contains(wrong.output, "upscales x4 only")) << wrong.output;
}

}  // namespace

namespace {

// The default model applies only when the line names no network: a config or weights name their
// own, and each route gives the bytes of its spelled-out form (-n unet_swin ...).
TEST(Cli, ConfigsAndWeightsNameTheirNetwork) {
  const std::string p = sinsr_test::parity_dir();
  fs::path d = fresh_dir("routes");
  const fs::path lr = d / "lr.png";
  sinsr::io::write_image(lr.string(), at::rand({3, 20, 24}));
  const std::string common = "infer -q --seed 3 --sampler deterministic --steps 1 -i " + lr.string() + " ";
  const std::string weights = "-w " + p + "/unet_tiny_official.pth --codec-weights " + p + "/vq_tiny_official.pth ";
  const std::string configs = "--backbone-config " + p + "/tiny-unet.yaml --codec-config " + p + "/tiny-vq.yaml ";
  HostRun spelled = run_host(common + "-n unet_swin " + configs + weights + "-o " + (d / "spelled.png").string());
  ASSERT_EQ(spelled.code, 0) << spelled.output;
  HostRun named = run_host(common + configs + weights + "-o " + (d / "by_weights.png").string());
  ASSERT_EQ(named.code, 0) << named.output;
  EXPECT_TRUE(sinsr_test::read_bytes(d / "spelled.png") == sinsr_test::read_bytes(d / "by_weights.png"));
  HostRun alone = run_host(common + weights + "-o " + (d / "alone.png").string());
  ASSERT_EQ(alone.code, 0) << alone.output;
  EXPECT_TRUE(sinsr_test::read_bytes(d / "spelled.png") == sinsr_test::read_bytes(d / "alone.png"));
  // A config without weights says what is missing; a bare --codec-weights of another codec than
  // the default model's says which codec the file holds.
  HostRun no_weights = run_host(common + "-c sinsr_x4 -o " + (d / "x.png").string());
  EXPECT_EQ(no_weights.code, 1) << no_weights.output;
  EXPECT_TRUE(contains(no_weights.output, "no weights were given: give its weights")) << no_weights.output;
  if (fs::exists(fs::path(SINSR_PLUGIN_DIR) / "student.so")) {
    HostRun codec_only =
        run_host(common + "--codec-weights " + p + "/vq_tiny_official.pth -o " + (d / "x.png").string());
    EXPECT_EQ(codec_only.code, 1) << codec_only.output;
    EXPECT_TRUE(contains(codec_only.output, "holds a 'vq_f4' codec")) << codec_only.output;
  }
  EXPECT_FALSE(fs::exists(d / "x.png"));
}

}  // namespace

namespace {

// The same short option means the same thing in every command (-j threads in degrade and bench
// as in infer, -w weights in train as in infer), and inspecting a name that is not loaded lists
// the names that are.
TEST(Cli, ShortOptionsAgreeAcrossCommandsAndInspectListsNames) {
  fs::path in = fresh_dir("short_in"), out = fresh_dir("short_out");
  sinsr::io::write_image((in / "a.png").string(), at::rand({3, 16, 16}));
  HostRun degrade = run_host("degrade -q -j 1 --mode bicubic -i " + in.string() + " -o " + out.string());
  EXPECT_EQ(degrade.code, 0) << degrade.output;
  HostRun train = run_host("train --help");
  EXPECT_TRUE(contains(train.output, "-w [ --backbone-weights ]")) << train.output;
  HostRun miss = run_host("plugins inspect no_such_thing --plugin " + kComponents);
  EXPECT_EQ(miss.code, 1) << miss.output;
  EXPECT_TRUE(contains(miss.output, "no component named 'no_such_thing' (loaded: ")) << miss.output;
  EXPECT_TRUE(contains(miss.output, "backbone local_blur")) << miss.output;
}

// Each command's --help fits a screen (under 40 lines) and every option it names, listed in full
// or by name under "more", is described in docs/cli.md.
TEST(Cli, HelpIsShortAndEveryOptionIsInTheDocs) {
  const std::string docs = sinsr_test::read_bytes(fs::path(SINSR_SOURCE_DIR) / "docs" / "cli.md");
  ASSERT_FALSE(docs.empty());
  for (const char* command : {"infer", "eval", "degrade", "bench", "train", "distill", "export", "plugins", "models"}) {
    HostRun help = run_host(std::string(command) + " --help");
    ASSERT_EQ(help.code, 0) << command << "\n" << help.output;
    const auto lines = std::count(help.output.begin(), help.output.end(), '\n');
    EXPECT_LE(lines, 40) << command << "\n" << help.output;
    const std::regex option("--([a-z][a-z0-9-]+)");
    for (auto it = std::sregex_iterator(help.output.begin(), help.output.end(), option); it != std::sregex_iterator();
         ++it) {
      const std::string name = (*it)[0];
      if (name == "--help") continue;
      const std::regex in_docs(name + "([^a-z0-9-]|$)");
      EXPECT_TRUE(std::regex_search(docs, in_docs)) << command << ": " << name << " is not in docs/cli.md";
    }
  }
}

// A file-size limit (ulimit -f) fails the writes that pass it, each as that file's error: the run
// goes on, exits 1, and leaves no temporary file (SIGXFSZ used to kill it midway).
TEST(Cli, AFileSizeLimitFailsTheFileNotTheRun) {
  fs::path in = fresh_dir("fsize_in"), out = fresh_dir("fsize_out");
  at::manual_seed(3);
  sinsr::io::write_image((in / "big.png").string(), at::rand({3, 24, 24}));        // noise: ~27 kB at x4
  sinsr::io::write_image((in / "flat.png").string(), at::full({3, 24, 24}, 0.5));  // ~0.3 kB at x4
  const std::string cmd = "ulimit -f 8; exec " + std::string(SINSR_HOST_EXE) + " " + kBlur + "-q -j 1 -i " +
                          in.string() + " -o " + out.string();
  const std::string log = (out.parent_path() / "fsize.log").string();
  const int status = std::system(("bash -c '" + cmd + "' > " + log + " 2>&1").c_str());
  const std::string text = sinsr_test::read_bytes(log);
  ASSERT_TRUE(WIFEXITED(status)) << text;
  EXPECT_EQ(WEXITSTATUS(status), 1) << text;
  EXPECT_TRUE(contains(text, "big.png")) << text;
  EXPECT_TRUE(contains(text, "File too large")) << text;
  EXPECT_TRUE(fs::exists(out / "flat.png")) << text;
  EXPECT_FALSE(fs::exists(out / "big.png")) << text;
  for (const auto& e : fs::directory_iterator(out))
    EXPECT_FALSE(contains(e.path().filename().string(), ".tmp")) << e.path();
}

// An allocation that fails is that image's one-line error, with no LibTorch stack.
TEST(Cli, AnAllocationFailureIsOneLine) {
  fs::path in = fresh_dir("alloc_in"), out = fresh_dir("alloc_out");
  sinsr::io::write_image((in / "wide.png").string(), at::zeros({3, 4000, 4000}));
  sinsr::io::write_image((in / "small.png").string(), at::zeros({3, 8, 8}));
  // 2 GB of address space: the program loads; the x4 output of a 4000^2 image (3 GB) does not fit.
  const std::string cmd = "ulimit -v 2000000; exec " + std::string(SINSR_HOST_EXE) + " " + kBlur + "-q -j 1 -t 0 -i " +
                          in.string() + " -o " + out.string();
  const std::string log = (out.parent_path() / "alloc.log").string();
  const int status = ::system(("bash -c '" + cmd + "' > " + log + " 2>&1").c_str());
  const std::string text = sinsr_test::read_bytes(log);
  ASSERT_TRUE(WIFEXITED(status)) << text;
  if (WEXITSTATUS(status) == 0) GTEST_SKIP() << "the image fit in the address-space limit here";
  EXPECT_EQ(WEXITSTATUS(status), 1) << text;
  EXPECT_TRUE(contains(text, "wide.png")) << text;
  EXPECT_FALSE(contains(text, "frame #")) << text;
  EXPECT_FALSE(contains(text, "Exception raised from")) << text;
  EXPECT_TRUE(fs::exists(out / "small.png")) << text;
}

// The command is the first word after the global options (cli/command_words.hpp), never a later
// one: an input file called `eval` is an input like any other.
TEST(Cli, AnInputNamedLikeACommandIsAnInputLikeAnyOther) {
  auto word = [](std::vector<std::string> line) {
    std::vector<char*> argv;
    for (auto& a : line) argv.push_back(a.data());
    const char* w = sinsr::cli::command_word(int(argv.size()), argv.data());
    return std::string(w ? w : "(none)");
  };
  EXPECT_EQ(word({"sinsr-host", "-i", "eval", "-o", "x.png"}), "-i");
  EXPECT_EQ(word({"sinsr-host", "--plugin", "eval", "-j", "2", "infer", "-i", "eval"}), "infer");
  EXPECT_EQ(word({"sinsr-host", "-j2", "--threads=1", "--plugin=p.so", "eval", "--pred", "d"}), "eval");
  EXPECT_EQ(word({"sinsr-host", "--plugin", "p.so"}), "(none)");
  fs::path in = fresh_dir("named_eval"), out = fresh_dir("named_eval_out");
  sinsr::io::write_image((in / "eval.png").string(), at::rand({3, 8, 8}));
  fs::rename(in / "eval.png", in / "eval");
  HostRun r = run_host(kBlur + "-q -j 1 -f png -i " + (in / "eval").string() + " -o " + (out / "eval.png").string());
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(out / "eval.png")) << r.output;
}

// A config file given to a model is read before the model's own config is merged under it, so
// its keys win (merged unread, the model's keys won over the file's: window_size 1024 from a
// file ran as 8, exit 0); errors of a config file name it first.
TEST(Cli, AConfigFileWinsOverTheModelsConfigAndIsNamed) {
  fs::path dir = fresh_dir("config_file_wins");
  sinsr::io::write_image((dir / "in.png").string(), at::rand({3, 16, 16}));
  std::ofstream(dir / "wide.json") << R"({"window_size": 1024})";
  HostRun r = run_host("infer -n student -q -j 1 --backbone-config " + (dir / "wide.json").string() + " -i " +
                       (dir / "in.png").string() + " -o " + (dir / "out.png").string());
  EXPECT_EQ(r.code, 1) << r.output;
  EXPECT_TRUE(contains(r.output, (dir / "wide.json").string() + ": student create")) << r.output;
  EXPECT_TRUE(contains(r.output, "'window_size' must be an integer in [1, 64], got 1024")) << r.output;
  EXPECT_FALSE(fs::exists(dir / "out.png"));
  std::ofstream(dir / "kernel.json") << R"({"blur_kernel_size": 4001})";
  HostRun d = run_host("degrade -q --in " + dir.string() + " --out " + (dir / "lr").string() + " --seed 0 --config " +
                       (dir / "kernel.json").string());
  EXPECT_EQ(d.code, 1) << d.output;
  EXPECT_TRUE(contains(d.output, (dir / "kernel.json").string() + ": degradation option 'blur_kernel_size'"))
      << d.output;
}

// The writer converts the output a band of rows at a time: converting a whole 4096^2 output at
// once held four float copies of it (a 4096^2 x4 upscale peaked at 16.8 GB, 5.6 GB now).
TEST(Cli, WritingALargeOutputHoldsNoFullSizeCopies) {
#if defined(SINSR_WITH_CUDA)
  GTEST_SKIP() << "CUDA LibTorch maps its kernels at load";
#endif
  fs::path dir = fresh_dir("large_output");
  sinsr::io::write_image((dir / "in.png").string(), at::rand({3, 1024, 1024}));
  HostRun r = run_host(kBlur + "-q -j 1 -t 128 -i " + (dir / "in.png").string() + " -o " + (dir / "out.png").string());
  ASSERT_EQ(r.code, 0) << r.output;
  // 4096^2 output in tiles of 128: 201 MB a float copy. Colour and weight sums plus the result's
  // bytes stay under 0.9 GB with the program; converting the whole image at once peaked at 1.28 GB.
  EXPECT_LT(r.peak_rss_kb, 900 * 1024);
}

// Where the build found tcmalloc, it is the program's allocator, LibTorch's loading included: a
// heap limit of tcmalloc's own stops it there.
TEST(Cli, TheProgramAllocatesWithTcmallocWhereBuilt) {
#if !defined(SINSR_TCMALLOC)
  GTEST_SKIP() << "built without tcmalloc_minimal";
#else
  ::setenv("TCMALLOC_HEAP_LIMIT_MB", "16", 1);
  HostRun limited = run_host("--version");
  ::unsetenv("TCMALLOC_HEAP_LIMIT_MB");
  EXPECT_NE(limited.code, 0) << limited.output;
  EXPECT_TRUE(contains(limited.output, "tcmalloc: allocation failed")) << limited.output;
  HostRun free_run = run_host("--version");
  EXPECT_EQ(free_run.code, 0) << free_run.output;
  EXPECT_FALSE(contains(free_run.output, "tcmalloc")) << free_run.output;
#endif
}

// Memory follows the job: the program holds what LibTorch and the job need, nothing speculative
// (the launcher used to fault in 1 GiB of heap for every network line). Both lines stay under
// 400 MB of peak resident memory with Debian's CPU LibTorch.
TEST(Cli, SmallJobsHoldLittleMemory) {
#if defined(SINSR_WITH_CUDA)
  GTEST_SKIP() << "CUDA LibTorch maps its kernels at load";
#endif
  fs::path dir = fresh_dir("small_jobs");
  sinsr::io::write_image((dir / "in.png").string(), at::rand({3, 64, 64}));
  HostRun up =
      run_host("infer -n student -q -j 1 -i " + (dir / "in.png").string() + " -o " + (dir / "out.png").string());
  ASSERT_EQ(up.code, 0) << up.output;
  ASSERT_TRUE(fs::exists(dir / "out.png"));
  EXPECT_GT(up.peak_rss_kb, 0);
  EXPECT_LT(up.peak_rss_kb, 400 * 1024) << "student on 64x64";
  std::ofstream(dir / "bad.pth", std::ios::binary) << std::string(1024, '\x5a');
  HostRun refused = run_host("infer -n student -q -j 1 --backbone-weights " + (dir / "bad.pth").string() + " -i " +
                             (dir / "in.png").string() + " -o " + (dir / "out2.png").string());
  EXPECT_EQ(refused.code, 1) << refused.output;
  EXPECT_TRUE(contains(refused.output, "bad.pth")) << refused.output;
  EXPECT_LT(refused.peak_rss_kb, 400 * 1024) << "refused 1 KB checkpoint";
}

}  // namespace
