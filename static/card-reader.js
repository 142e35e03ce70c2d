/* The family card reader: the laptop's camera, frames decoded by the vendored jsQR; the first
   Contigo card found fills the form and submits it (the server checks every signature). */
(function () {
  "use strict";
  var button = document.querySelector("[data-card-scan]");
  if (!button) { return; }
  var video = document.getElementById("card-video");
  var canvas = document.getElementById("card-canvas");
  var status = document.getElementById("card-camera-status");
  var field = document.getElementById("card_text");
  var form = document.getElementById("card-read-form");
  var stream = null;

  function stop() {
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
  }

  function tick() {
    if (!stream) { return; }
    if (video.readyState >= 2 && video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      var ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
      var image = ctx.getImageData(0, 0, canvas.width, canvas.height);
      var found = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
      if (found && found.data && found.data.indexOf("CTG1:") === 0) {
        stop();
        field.value = found.data;
        form.submit();
        return;
      }
    }
    window.requestAnimationFrame(tick);
  }

  button.addEventListener("click", function () {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.jsQR) {
      status.textContent = status.dataset.noCamera;
      return;
    }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.hidden = false;
        status.textContent = status.dataset.waiting;
        return video.play();
      })
      .then(function () { window.requestAnimationFrame(tick); })
      .catch(function () { status.textContent = status.dataset.noCamera; });
  });
})();
