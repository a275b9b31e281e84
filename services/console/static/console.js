// SIUI Access console: small progressive touches. Every page works without this file;
// with it, selects and check boxes submit themselves, tabs become tabs, and the
// agreement PDF downloads by itself.
"use strict";
document.documentElement.classList.add("js");

document.addEventListener("DOMContentLoaded", () => {
  // Forms marked data-autosubmit send themselves when a select or check box changes.
  document.querySelectorAll("form[data-autosubmit]").forEach((form) => {
    form.addEventListener("change", (event) => {
      if (event.target.matches("select, input[type=checkbox]")) form.requestSubmit();
    });
  });
  document.querySelectorAll("[data-autosubmit-change]").forEach((input) => {
    input.addEventListener("change", () => input.form && input.form.requestSubmit());
  });

  // The agreement: the PDF is in the page already; start its download once.
  document.querySelectorAll("a[data-autodownload]").forEach((link) => link.click());

  // "Inapoi" on error pages: the page the clerk came from, when there is one.
  document.querySelectorAll("a[data-back]").forEach((link) => {
    link.addEventListener("click", (event) => {
      if (history.length > 1 && document.referrer.startsWith(location.origin)) {
        event.preventDefault();
        history.back();
      }
    });
  });

  document.querySelectorAll("[data-tabs]").forEach(setUpTabs);
});

// WAI-ARIA tabs: arrows move between tabs, the URL fragment remembers the open one,
// and a panel holding a field error opens first.
function setUpTabs(root) {
  const tabs = Array.from(root.querySelectorAll("[role=tab]"));
  const panels = tabs.map((tab) => document.getElementById(tab.getAttribute("aria-controls")));
  const show = (index, focus) => {
    tabs.forEach((tab, i) => {
      const selected = i === index;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      panels[i].hidden = !selected;
    });
    if (focus) tabs[index].focus();
  };
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", (event) => {
      event.preventDefault();
      show(i, false);
      history.replaceState(null, "", "#" + panels[i].id);
    });
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (step) {
        event.preventDefault();
        show((i + step + tabs.length) % tabs.length, true);
      }
    });
  });
  let first = panels.findIndex((panel) => panel.querySelector(".field-error"));
  if (first < 0) first = panels.findIndex((panel) => "#" + panel.id === location.hash);
  show(Math.max(first, 0), false);
}
