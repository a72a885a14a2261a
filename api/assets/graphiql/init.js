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
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: "# 例：公示名单的第一页\n{ __typename publicListings(first: 5) { edges { node { uscc operatorName listName } } } }\n",
    })
  );
})();
