() => {
  // Thumbs under an answer: the pressed thumb, its answer and the comment go to the server
  // through a hidden textbox and button of the chat page (ui/chat_page.py, Rating).
  document.addEventListener("click", (event) => {
    const thumb = event.target.closest("#transcript .rate button.thumb");
    if (!thumb) return;
    const rate = thumb.closest(".rate");
    const payload = document.querySelector("#rating-payload textarea");
    const send = document.querySelector("#rating-send");
    if (!payload || !send) return;
    rate.querySelectorAll("button.thumb").forEach((b) => b.setAttribute("aria-pressed", String(b === thumb)));
    payload.value = JSON.stringify({
      message_id: Number(rate.dataset.message),
      helpful: thumb.dataset.helpful === "true",
      comment: rate.querySelector(".rate-comment").value,
    });
    payload.dispatchEvent(new Event("input", { bubbles: true }));
    setTimeout(() => send.click(), 0);
  });
}
