// Print and copy buttons for the one-time password page; without JavaScript the page
// says how to print it instead.
(function () {
  'use strict';
  var actions = document.getElementById('handout-actions');
  var secret = document.getElementById('one-time-password');
  if (!actions || !secret) return;
  var lang = document.documentElement.lang === 'en' ? 'en' : 'de';
  var texts = {
    de: {
      print: 'Drucken',
      copy: 'Kennwort kopieren',
      copied: 'Das Kennwort ist in der Zwischenablage.',
      failed: 'Kopieren war nicht möglich. Bitte markieren und kopieren Sie das Kennwort selbst.',
    },
    en: {
      print: 'Print',
      copy: 'Copy password',
      copied: 'The password is on the clipboard.',
      failed: 'Copying was not possible. Please select and copy the password yourself.',
    },
  }[lang];
  var status = document.createElement('p');
  status.setAttribute('role', 'status');
  var button = function (label, onClick) {
    var element = document.createElement('button');
    element.type = 'button';
    element.className = 'secondary';
    element.textContent = label;
    element.addEventListener('click', onClick);
    return element;
  };
  actions.textContent = '';
  actions.appendChild(
    button(texts.print, function () {
      window.print();
    }),
  );
  if (navigator.clipboard) {
    actions.appendChild(
      button(texts.copy, function () {
        navigator.clipboard.writeText(secret.textContent || '').then(
          function () {
            status.textContent = texts.copied;
          },
          function () {
            status.textContent = texts.failed;
          },
        );
      }),
    );
  }
  actions.appendChild(status);
})();
