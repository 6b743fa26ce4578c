#include "reports/step_through.h"

#include <sstream>

namespace cyclefuzz {

namespace {

std::string escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

/// Graphviz's SVG without its XML prolog and doctype, which have no place inside HTML.
std::string inline_svg(const std::string& svg) {
  const std::size_t start = svg.find("<svg");
  return start == std::string::npos ? svg : svg.substr(start);
}

constexpr const char* kStyle = R"(
body { font-family: Helvetica, Arial, sans-serif; margin: 0; color: #222; }
header { position: sticky; top: 0; background: #f4f4f4; padding: 0.6em 1em;
         border-bottom: 1px solid #ccc; }
header h1 { font-size: 1.1em; margin: 0 0 0.4em 0; }
#controls { display: flex; align-items: center; gap: 0.6em; }
#slider { flex: 1; }
main { display: flex; gap: 1.5em; padding: 1em; align-items: flex-start; }
#trace { font-family: monospace; margin: 0; padding-left: 3em; min-width: 16em; }
#trace li { padding: 0 0.3em; }
#trace li.current { background: #ffe08a; font-weight: bold; }
#trace li.violation { color: #b00; }
#trace li.after { color: #aaa; }
.frame figcaption { font-family: monospace; white-space: pre-wrap; margin-bottom: 0.5em; }
.frame .frees { margin: 0.3em 0; }
.frame[data-violation] figcaption { color: #b00; }
.frame svg { max-width: 100%; height: auto; }
)";

// Shows one step: its frame, its op marked in the trace (the ops after it greyed), and the status
// line; the body says which step is shown (data-current), for people's tools and for tests.
constexpr const char* kScript = R"(
(function () {
  var frames = document.querySelectorAll('.frame');
  var ops = document.querySelectorAll('#trace li');
  var slider = document.getElementById('slider');
  var status = document.getElementById('status');
  function show(step) {
    step = Math.max(1, Math.min(frames.length, step));
    var op = 0;
    frames.forEach(function (f, i) {
      f.hidden = i + 1 !== step;
      if (i + 1 === step) op = Number(f.dataset.op);
    });
    ops.forEach(function (li, i) {
      li.classList.toggle('current', i + 1 === op);
      li.classList.toggle('after', i + 1 > op);
    });
    slider.value = step;
    document.body.dataset.current = step;
    var frame = frames[step - 1];
    status.textContent = 'step ' + step + ' of ' + frames.length + ': ' +
        (op > 0 ? 'after op ' + op : 'before the first op') +
        (frame.dataset.violation !== undefined ? ' - ' + frame.dataset.violation : '');
  }
  slider.addEventListener('input', function () { show(Number(slider.value)); });
  document.getElementById('previous').addEventListener('click', function () {
    show(Number(slider.value) - 1);
  });
  document.getElementById('next').addEventListener('click', function () {
    show(Number(slider.value) + 1);
  });
  document.addEventListener('keydown', function (e) {
    var step = Number(slider.value);
    if (e.key === 'ArrowLeft') show(step - 1);
    else if (e.key === 'ArrowRight') show(step + 1);
    else if (e.key === 'Home') show(1);
    else if (e.key === 'End') show(frames.length);
    else return;
    e.preventDefault();
  });
  // It opens at the violation (the last step), or at the step a link names: page.html#step=2.
  var named = /^#step=(\d+)$/.exec(window.location.hash);
  show(named ? Number(named[1]) : frames.length);
})();
)";

}  // namespace

std::string step_through_page(const Trace& trace, const Explanation& explanation,
                              const std::vector<std::string>& svgs) {
  const std::size_t steps = explanation.frames.size();
  const std::string title = trace.source + " on " + explanation.collector;
  std::ostringstream page;
  page << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       << "<title>cyclefuzz explain: " << escaped(title) << "</title>\n<style>" << kStyle
       << "</style>\n</head>\n<body data-steps=\"" << steps << "\">\n<header>\n<h1>"
       << escaped(title) << "</h1>\n<div id=\"controls\">"
       << "<button id=\"previous\" title=\"previous op (left arrow)\">&#9664;</button>"
       << "<input id=\"slider\" type=\"range\" min=\"1\" max=\"" << steps << "\" value=\""
       << steps << "\" aria-label=\"step\">"
       << "<button id=\"next\" title=\"next op (right arrow)\">&#9654;</button></div>\n"
       << "<p id=\"status\"></p>\n</header>\n<main>\n<ol id=\"trace\">\n";
  // The frames' last op marks the end of what ran; a crash marks the op after it.
  const Frame* final_frame = steps > 0 ? &explanation.frames.back() : nullptr;
  for (std::size_t i = 0; i < trace.ops.size(); ++i) {
    const bool broke = final_frame != nullptr &&
                       ((final_frame->violation && i + 1 == final_frame->ops) ||
                        (final_frame->crash && i == final_frame->ops));
    page << "<li" << (broke ? " class=\"violation\"" : "") << ">"
         << escaped(show(trace.ops[i], trace)) << "</li>\n";
  }
  page << "</ol>\n<section id=\"frames\">\n";
  for (std::size_t i = 0; i < steps; ++i) {
    const Frame& f = explanation.frames[i];
    page << "<figure class=\"frame\" data-op=\"" << f.ops << "\"";
    if (f.violation || f.crash) {
      page << " data-violation=\"" << escaped(f.caption.size() > 1 ? f.caption[1] : "") << "\"";
    }
    page << (i + 1 == steps ? "" : " hidden") << ">\n<figcaption>";
    for (std::size_t line = 1; line < f.caption.size(); ++line) {
      page << escaped(f.caption[line]) << "\n";
    }
    page << "</figcaption>\n<p class=\"frees\">";
    if (f.freed.empty()) {
      page << "the op freed nothing";
    } else {
      page << "the op freed:";
      for (const std::string& name : f.freed) page << " " << escaped(name);
    }
    page << "</p>\n" << inline_svg(svgs.at(i)) << "\n</figure>\n";
  }
  page << "</section>\n</main>\n<script>" << kScript << "</script>\n</body>\n</html>\n";
  return page.str();
}

}  // namespace cyclefuzz
