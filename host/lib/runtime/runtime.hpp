// The host runtime in C++: the plugin loader and registry (registry.hpp) and the handles that wrap
// each kind's C function table in an RAII object speaking at::Tensor and throwing
// sinsr::sdk::Error (handles.hpp). Pipelines, the trainer and sinsr-host are written against this
// layer.
#pragma once

#include "runtime/handles.hpp"
#include "runtime/registry.hpp"
