// podfwdctl's run() with its output captured, for the tests.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "control/ctl/run.h"

namespace podfwd::ctl {

struct Outcome {
    int status = -1;
    std::string out;
    std::string err;
};

inline Outcome run_captured(const std::vector<std::string>& args, const Environment& environment) {
    std::ostringstream out, err;
    const int status = run(args, environment, out, err);
    return {status, out.str(), err.str()};
}

}  // namespace podfwd::ctl
