// Starts GraphiQL against this registry's /graphql (same origin; no external URL).
(function () {
  var fetcher = function (params, options) {
    var headers = Object.assign(
      { 'content-type': 'application/json', accept: 'application/json' },
      (options && options.headers) || {}
    );
    return fetch('/graphql', {
      method: 'POST',
      headers: headers,
      body: JSON.stringify(params),
    }).then(function (response) {
      return response.json();
    });
  };
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, { fetcher: fetcher })
  );
})();
