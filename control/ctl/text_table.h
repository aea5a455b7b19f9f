// Aligned plain-text tables for podfwdctl's human output: column widths are
// computed from the cells, so any value lines up however long it is.
#pragma once

#include <string>
#include <vector>

namespace podfwd::ctl {

enum class Align { kLeft, kRight };

class TextTable {
public:
    struct Column {
        std::string header;
        Align align = Align::kLeft;
    };

    explicit TextTable(std::vector<Column> columns);

    // A row with fewer cells than columns is padded with empty cells.
    void add_row(std::vector<std::string> cells);
    bool empty() const noexcept { return rows_.empty(); }

    // Header line then one line per row, columns two spaces apart, no
    // trailing blanks; each line ends in '\n'.
    std::string render() const;

private:
    std::vector<Column> columns_;
    std::vector<std::vector<std::string>> rows_;
};

// Two columns, no header: "name   value" lines for one object's fields.
std::string render_fields(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace podfwd::ctl
