// Command line plus INI config file, as both daemons take them (Boost's
// program_options; include only where that dependency is linked).
#pragma once

#include <boost/program_options.hpp>
#include <string>

#include "common/result.h"

namespace podfwd {

// Parses argv, then the file named by --config if any; the command line
// wins (store() keeps an option's first value). With --help the file is
// not read. Errors are kInvalidArgument with Boost's one-line message.
inline Result<boost::program_options::variables_map> parse_command_line_and_config(
    int argc, char** argv, const boost::program_options::options_description& desc) {
    namespace po = boost::program_options;
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
        if (vm.count("help"))
            return vm;
        if (vm.count("config")) {
            const auto& path = vm["config"].as<std::string>();
            po::store(po::parse_config_file(path.c_str(), desc), vm);
        }
        po::notify(vm);
    } catch (const po::error& e) {
        return Error{Errc::kInvalidArgument, e.what()};
    }
    return vm;
}

// A route table's segment name: /dev/shm/<name>.
inline Status check_table_name(const std::string& name) {
    if (name.empty() || name.size() > 200 || name.find('/') != std::string::npos)
        return Error{Errc::kInvalidArgument, "--table '" + name + "' must be a non-empty segment name without '/'"};
    return ok();
}

}  // namespace podfwd
