window.ui = SwaggerUIBundle({ url: "/api/schema/", dom_id: "#swagger-ui", deepLinking: true });
