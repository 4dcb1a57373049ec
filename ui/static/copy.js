// Selecting a pull command selects all of it, ready to copy; a page reads the
// same without this file.
document.addEventListener("focusin", function (e) {
  if (e.target instanceof HTMLInputElement && e.target.classList.contains("copy")) {
    e.target.select();
  }
});
