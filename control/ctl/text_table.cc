#include "control/ctl/text_table.h"

#include <algorithm>
#include <utility>

namespace podfwd::ctl {

namespace {

// Counts code points, not bytes, so that "→" or a UTF-8 name in a daemon
// error keeps the columns straight.
std::size_t display_width(const std::string& text) {
    return static_cast<std::size_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

std::string render_lines(const std::vector<std::vector<std::string>>& lines, const std::vector<Align>& aligns) {
    std::vector<std::size_t> widths(aligns.size(), 0);
    for (const auto& line : lines)
        for (std::size_t c = 0; c < line.size(); ++c)
            widths[c] = std::max(widths[c], display_width(line[c]));

    std::string out;
    for (const auto& line : lines) {
        std::string text;
        for (std::size_t c = 0; c < line.size(); ++c) {
            const std::string padding(widths[c] - display_width(line[c]), ' ');
            if (c > 0)
                text += "  ";
            text += aligns[c] == Align::kRight ? padding + line[c] : line[c] + padding;
        }
        text.erase(text.find_last_not_of(' ') + 1);
        out += text;
        out += '\n';
    }
    return out;
}

}  // namespace

TextTable::TextTable(std::vector<Column> columns) : columns_(std::move(columns)) {}

void TextTable::add_row(std::vector<std::string> cells) {
    cells.resize(columns_.size());
    rows_.push_back(std::move(cells));
}

std::string TextTable::render() const {
    std::vector<std::vector<std::string>> lines;
    std::vector<Align> aligns;
    lines.emplace_back();
    for (const auto& column : columns_) {
        lines.front().push_back(column.header);
        aligns.push_back(column.align);
    }
    lines.insert(lines.end(), rows_.begin(), rows_.end());
    return render_lines(lines, aligns);
}

std::string render_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::vector<std::vector<std::string>> lines;
    for (const auto& [name, value] : fields)
        lines.push_back({name, value});
    return render_lines(lines, {Align::kLeft, Align::kLeft});
}

}  // namespace podfwd::ctl
