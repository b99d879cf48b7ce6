// The three sampling rules over one Schedule: ResShift's stochastic p_sample loop, SinSR's
// deterministic k/m/j loop, and the single network call at the last step.
#pragma once

#include "schedule.hpp"

#include <functional>
#include <string>

namespace sinsr {
namespace resshift {

// x_in is already scaled (x_t / input_std); t is the int64 timestep the network sees (mapped).
using Denoise = std::function<at::Tensor(const at::Tensor& x_in, const at::Tensor& t)>;
using Noise = std::function<at::Tensor(const at::Tensor& like)>;
using Progress = std::function<bool(int step, int total)>;  // false = cancel

enum class Rule { Stochastic, Deterministic, SingleStep };

// Runs the loop from x_T down to t = 0 (one call for SingleStep). The stochastic rule draws one
// noise tensor per step, t = 0 included (masked there), as the official loop consumes its RNG.
// Throws sdk::Error(SINSR_ERR_CANCELLED) when progress returns false.
at::Tensor sample(const Schedule& s, Rule rule, const at::Tensor& y, const at::Tensor& x_T, const Denoise& denoise,
                  const Noise& noise, const Progress& progress);

}  // namespace resshift
}  // namespace sinsr
