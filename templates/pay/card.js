// The card form in production: Stripe's Payment Element confirms the SetupIntent, then
// Stripe sends the browser back to our card-return URL (which hands the card to the case).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("card-form");
  var error = document.getElementById("card-error");
  var stripe = window.Stripe(form.dataset.key, { locale: form.dataset.locale });
  var elements = stripe.elements({ clientSecret: form.dataset.secret });
  elements.create("payment").mount("#payment-element");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    form.querySelector("button[type=submit]").disabled = true;
    stripe
      .confirmSetup({ elements: elements, confirmParams: { return_url: form.dataset.return } })
      .then(function (result) {
        // Only reached when confirmation failed: success leaves the page for return_url.
        if (result.error) {
          error.textContent = result.error.message;
          error.hidden = false;
          form.querySelector("button[type=submit]").disabled = false;
        }
      });
  });
});
