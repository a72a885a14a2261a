// Starts GraphiQL against this registry (same origin; no external URL): queries and
// mutations are POSTed to /graphql as JSON, subscriptions go over /graphql/ws with the
// graphql-transport-ws protocol (graphql-ws, bundled in graphiql.min.js). The headers
// typed in GraphiQL's header editor (e.g. {"Authorization": "Bearer …"}) are sent with
// every HTTP request and, for a subscription, as the connection_init payload, which is
// where the registry reads the socket's token.
(function () {
  var wsScheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
  var fetcher = GraphiQL.createFetcher({
    url: '/graphql',
    subscriptionUrl: wsScheme + window.location.host + '/graphql/ws',
    headers: { accept: 'application/json' },
    // The registry answers application/json, never multipart/mixed.
    enableIncrementalDelivery: false,
  });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: "# 例：公示名单的第一页\n{ __typename publicListings(first: 5) { edges { node { uscc operatorName listName } } } }\n",
    })
  );
})();
