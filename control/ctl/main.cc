// podfwdctl: the operator's view of podfwd-control and the dataplane's
// counters. Everything but reading the process environment is in run.cc.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "control/ctl/run.h"

int main(int argc, char** argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    podfwd::ctl::Environment environment;
    if (const char* socket = std::getenv("PODFWD_SOCKET"))
        environment.socket_env = socket;
    return podfwd::ctl::run(args, environment, std::cout, std::cerr);
}
