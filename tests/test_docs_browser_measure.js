// Layout measurements for tests/test_docs_browser.py, evaluated in each page.
// Arguments: [mustFit: bool, mustFitSelectors: string[]]. Returns the column width, the
// elements wider than the column outside a scroll box, the must-fit elements that need a
// scroll bar, identifiers broken across lines and the rendered size of the SVG labels.
([mustFit, mustFitSelectors]) => {
  const column = document.querySelector('article[role=main]') || document.querySelector('article');
  const colWidth = column.clientWidth;
  const scrollerOf = (el) => {
    for (let a = el; a && a !== column; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox === 'auto' || ox === 'scroll') return a;
    }
    return null;
  };
  const describe = (el) => {
    const cls = (el.className && el.className.baseVal !== undefined)
      ? el.className.baseVal : el.className;
    const id = el.id || (el.closest('[id]') || {}).id || '';
    return `${el.tagName.toLowerCase()}.${String(cls).split(' ').join('.')} near #${id}`;
  };
  const problems = [];
  for (const el of column.querySelectorAll('table, pre, svg')) {
    if (el.closest('.headerlink') || el.getClientRects().length === 0) continue;
    const width = Math.max(el.scrollWidth || 0, el.getBoundingClientRect().width);
    const scroller = scrollerOf(el);
    if (scroller) {
      const outer = scroller.getBoundingClientRect().width;
      if (outer > colWidth + 1)
        problems.push(`${describe(el)}: its scroll box is ${Math.round(outer)} px wide, column ${colWidth} px`);
    } else if (width > colWidth + 1) {
      problems.push(`${describe(el)}: ${Math.round(width)} px wide in a ${colWidth} px column, not scrollable`);
    }
  }
  const overflowing = [];
  if (mustFit) {
    for (const sel of mustFitSelectors) {
      for (const el of column.querySelectorAll(sel)) {
        const scroller = scrollerOf(el);
        const box = scroller || el;
        if (box.scrollWidth > box.clientWidth + 1 || el.getBoundingClientRect().width > colWidth + 1)
          overflowing.push(`${describe(el)}: needs ${box.scrollWidth} px, has ${box.clientWidth} px`);
      }
    }
  }
  const broken = [];
  const ids = column.querySelectorAll('.addcow-rule-ref, .addcow-vector-ref, code.addcow-vector, a[href*="#rule-"]');
  for (const el of ids) {
    if (el.getClientRects().length > 1) broken.push(el.textContent);
  }
  const svgText = [];
  for (const svg of column.querySelectorAll('svg.addcow-layout')) {
    const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
    svgText.push(11 * scale);
  }
  return {colWidth, problems, overflowing, broken, svgText, idCount: ids.length};
}
