#include "io/jpeg.hpp"

#include "io/image_io.hpp"

#include <sinsr/sdk.hpp>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <jpeglib.h>

namespace sinsr {
namespace io {

using sdk::Error;

namespace {

// libjpeg's default error handler calls exit(); this one jumps back to the call, which turns the
// message into an Error. No C++ object with a destructor lives between setjmp and longjmp.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf back;
  char message[JMSG_LENGTH_MAX];
  // State the jump must see as it was: locals changed after setjmp are indeterminate after it.
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  bool enc_made = false, dec_made = false;
};

void jump_back(j_common_ptr info) {
  auto* e = reinterpret_cast<JpegError*>(info->err);
  info->err->format_message(info, e->message);
  std::longjmp(e->back, 1);
}

void keep_quiet(j_common_ptr, int) {}  // warnings (e.g. corrupt data) end up as the decoded pixels

// Encodes `pixels` (h*w*c bytes, rows) into memory and decodes them again into `decoded`. Returns 0, or 1 with
// err->message set.
int round_trip(const unsigned char* pixels, int w, int h, int c, int quality, unsigned char* decoded, JpegError* err) {
  jpeg_compress_struct enc;
  jpeg_decompress_struct dec;
  enc.err = jpeg_std_error(&err->mgr);
  dec.err = &err->mgr;
  err->mgr.error_exit = jump_back;
  err->mgr.emit_message = keep_quiet;
  if (setjmp(err->back)) {
    if (err->enc_made) jpeg_destroy_compress(&enc);
    if (err->dec_made) jpeg_destroy_decompress(&dec);
    std::free(err->buffer);
    err->buffer = nullptr;
    return 1;
  }
  jpeg_create_compress(&enc);
  err->enc_made = true;
  jpeg_mem_dest(&enc, &err->buffer, &err->size);
  enc.image_width = JDIMENSION(w);
  enc.image_height = JDIMENSION(h);
  enc.input_components = c;
  enc.in_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&enc);
  jpeg_set_quality(&enc, quality, TRUE);
  if (c == 3) {  // 4:2:0, as OpenCV's and PIL's encoders by default
    enc.comp_info[0].h_samp_factor = 2;
    enc.comp_info[0].v_samp_factor = 2;
    enc.comp_info[1].h_samp_factor = enc.comp_info[1].v_samp_factor = 1;
    enc.comp_info[2].h_samp_factor = enc.comp_info[2].v_samp_factor = 1;
  }
  jpeg_start_compress(&enc, TRUE);
  while (enc.next_scanline < enc.image_height) {
    JSAMPROW row = const_cast<unsigned char*>(pixels) + size_t(enc.next_scanline) * size_t(w) * size_t(c);
    jpeg_write_scanlines(&enc, &row, 1);
  }
  jpeg_finish_compress(&enc);
  jpeg_destroy_compress(&enc);
  err->enc_made = false;

  jpeg_create_decompress(&dec);
  err->dec_made = true;
  jpeg_mem_src(&dec, err->buffer, err->size);
  jpeg_read_header(&dec, TRUE);
  dec.out_color_space = c == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&dec);
  if (int(dec.output_width) != w || int(dec.output_height) != h || dec.output_components != c) {
    std::snprintf(err->message, sizeof err->message, "the decoded image has another shape");
    jpeg_destroy_decompress(&dec);
    std::free(err->buffer);
    err->buffer = nullptr;
    return 1;
  }
  while (dec.output_scanline < dec.output_height) {
    JSAMPROW row = decoded + size_t(dec.output_scanline) * size_t(w) * size_t(c);
    jpeg_read_scanlines(&dec, &row, 1);
  }
  jpeg_finish_decompress(&dec);
  jpeg_destroy_decompress(&dec);
  std::free(err->buffer);
  err->buffer = nullptr;
  return 0;
}

}  // namespace

at::Tensor jpeg_round_trip(const at::Tensor& chw01, int quality) {
  sdk::require(quality >= 1 && quality <= 100, SINSR_ERR_INVALID_ARGUMENT,
               "jpeg: quality must be in 1..100, got " + std::to_string(quality));
  sdk::require(chw01.dim() == 3 && (chw01.size(0) == 1 || chw01.size(0) == 3) && chw01.size(1) > 0 &&
                   chw01.size(2) > 0 && chw01.size(1) <= JPEG_MAX_DIMENSION && chw01.size(2) <= JPEG_MAX_DIMENSION,
               SINSR_ERR_INVALID_ARGUMENT, "jpeg: expected a non-empty [C,H,W] image with 1 or 3 channels");
  const int c = int(chw01.size(0)), h = int(chw01.size(1)), w = int(chw01.size(2));
  const at::Tensor hwc = to_uint8_hwc(chw01);
  at::Tensor dec = at::empty({h, w, c}, at::kByte);
  JpegError err;
  if (round_trip(hwc.data_ptr<uint8_t>(), w, h, c, quality, dec.data_ptr<uint8_t>(), &err) != 0)
    throw Error(SINSR_ERR_RUNTIME, std::string("jpeg: ") + err.message);
  return dec.permute({2, 0, 1}).to(chw01.scalar_type()).div(255.0).contiguous();
}

}  // namespace io
}  // namespace sinsr
